//! What every command shares in how it answers: `--json` (`Output`), pretty JSON, a failure
//! already reported (`Reported`), and a progress bar on stderr for long work.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use lathe_core::Workspace;
use lathe_core::jobs::Progress;

/// A failure whose details the command has already printed (as JSON under `--json`): the
/// process exits non-zero with this one line on stderr, and no JSON error follows the answer.
#[derive(Debug)]
pub struct Reported(pub String);

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Reported {}

#[derive(Debug, Args)]
pub struct Output {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A text file a command was pointed at; the error names it.
pub fn read_text(path: &std::path::Path) -> Result<String> {
    use anyhow::Context;
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

pub fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Runs `work` on a scoped thread while this one draws its progress on stderr (when it is a
/// terminal); Ctrl-C ends the process, and an unfinished import leaves nothing behind.
pub fn with_progress<T: Send>(
    ws: &mut Workspace,
    work: impl FnOnce(&mut Workspace, &Progress) -> lathe_core::Result<T> + Send,
) -> Result<T> {
    with_bar(&Progress::default(), None, |progress| work(ws, progress))
}

/// Runs `work` on a scoped thread while this one draws `progress` on stderr (when it is a
/// terminal) as a bar and the stage's name; `interrupted` (see [`on_ctrl_c`]) cancels it.
pub fn with_bar<T: Send>(
    progress: &Progress,
    interrupted: Option<&AtomicBool>,
    work: impl FnOnce(&Progress) -> lathe_core::Result<T> + Send,
) -> Result<T> {
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("{msg:>16} [{bar:40}] {percent:>3}% {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let result = std::thread::scope(|scope| {
        let handle = scope.spawn(|| work(progress));
        while !handle.is_finished() {
            if interrupted.is_some_and(|i| i.load(Ordering::Relaxed)) {
                progress.cancel();
            }
            let snap = progress.snapshot();
            bar.set_length(snap.total.max(1));
            bar.set_position(snap.done);
            bar.set_message(snap.stage);
            std::thread::sleep(Duration::from_millis(50));
        }
        handle.join()
    });
    bar.finish_and_clear();
    match result {
        Ok(result) => Ok(result?),
        Err(_) => anyhow::bail!("internal error: the task panicked"),
    }
}

/// Ctrl+C sets `cancel` (the work stops itself, its children with it) instead of ending the
/// process and orphaning them.
pub fn on_ctrl_c(cancel: Arc<AtomicBool>) {
    // Without the thread, Ctrl+C still stops the process, only less gently.
    let _ = std::thread::Builder::new()
        .name("lathe-ctrl-c".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!("cancelling…");
                    cancel.store(true, Ordering::Relaxed);
                }
            });
        });
}
