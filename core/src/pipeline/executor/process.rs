//! Running a command step's program: `sh -c` in its own process group, stdout and stderr
//! streamed line by line to the step's log, stopped (with everything it started) on cancel.

use crate::pipeline::{PipelineError, PipelineResult};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

const TAIL_LINES: usize = 5;

/// Runs `command` in `cwd` with `env` added; `Err` says how it ended when not with status 0.
pub fn run(
    command: &str,
    cwd: &Path,
    env: &[(String, String)],
    log: &(dyn Fn(&str) + Sync),
    cancel: &AtomicBool,
) -> PipelineResult<()> {
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(command)
        .current_dir(cwd)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    run_program(&mut sh, log, cancel)
}

/// Runs a program the same way: its own process group, output to `log` line by line, stopped
/// with everything it started when `cancel` is set (then `Err(PipelineError::Cancelled)`).
pub(crate) fn run_program(
    command: &mut Command,
    log: &(dyn Fn(&str) + Sync),
    cancel: &AtomicBool,
) -> PipelineResult<()> {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let pid = child.id();
    // The last lines, to say why a command failed.
    let tail = Mutex::new(VecDeque::with_capacity(TAIL_LINES));
    let log_line = |line: &str| {
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.to_owned());
        }
        log(line);
    };
    let log_line = &log_line;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    std::thread::scope(|scope| {
        let (read_tx, read_rx) = mpsc::channel();
        let mut readers = 0;
        for pipe in [
            stdout.map(|p| Box::new(p) as Box<dyn Read + Send>),
            stderr.map(|p| Box::new(p) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            readers += 1;
            let read_tx = read_tx.clone();
            scope.spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    match line {
                        Ok(line) => log_line(&line),
                        Err(_) => break,
                    }
                }
                let _ = read_tx.send(());
            });
        }
        let (done_tx, done_rx) = mpsc::channel();
        scope.spawn(move || {
            let _ = done_tx.send(child.wait());
        });
        let mut killed = false;
        let status = loop {
            match done_rx.recv_timeout(Duration::from_millis(50)) {
                Ok(status) => {
                    break status.map_err(|e| PipelineError::io("<command>", e))?;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if cancel.load(Ordering::Relaxed) && !killed {
                        killed = true;
                        log("cancelled: stopping the command and everything it started");
                        kill_group(pid);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err("lost track of the command".into());
                }
            }
        };
        // The last lines are read before saying how it ended; a pipe a leftover background
        // process still holds open is not waited on for long.
        for _ in 0..readers {
            if read_rx.recv_timeout(Duration::from_secs(1)).is_err() {
                break;
            }
        }
        if killed {
            return Err(PipelineError::Cancelled);
        }
        let last = tail
            .lock()
            .map(|t| t.iter().rev().find(|l| !l.trim().is_empty()).cloned())
            .ok()
            .flatten()
            .map(|l| format!(": {}", l.trim()))
            .unwrap_or_default();
        match (status.code(), status.signal()) {
            (Some(0), _) => Ok(()),
            (Some(code), _) => Err(PipelineError::Invalid(format!(
                "the command exited with status {code}{last}"
            ))),
            (None, Some(signal)) => Err(PipelineError::Invalid(format!(
                "the command was stopped by signal {signal}"
            ))),
            (None, None) => Err("the command ended abnormally".into()),
        }
    })
}

/// Stops a process group: the shell, the program and anything they started.
fn kill_group(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_streamed_and_status_reported() {
        let lines = Mutex::new(Vec::new());
        let log = |l: &str| lines.lock().unwrap().push(l.to_owned());
        let cancel = AtomicBool::new(false);
        let dir = std::env::temp_dir();
        run(
            "echo out; echo err >&2; echo $GREETING",
            &dir,
            &[("GREETING".into(), "hi".into())],
            &log,
            &cancel,
        )
        .unwrap();
        let mut got = lines.lock().unwrap().clone();
        got.sort();
        assert_eq!(got, ["err", "hi", "out"]);
        let e = run("echo bad input >&2; exit 3", &dir, &[], &log, &cancel).unwrap_err();
        assert_eq!(e.to_string(), "the command exited with status 3: bad input");
    }

    #[test]
    fn cancel_stops_a_hanging_command_and_its_children() {
        let cancel = AtomicBool::new(false);
        let log = |_: &str| {};
        let started = std::time::Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(200));
                cancel.store(true, Ordering::Relaxed);
            });
            let e = run(
                "sleep 30 & sleep 30",
                &std::env::temp_dir(),
                &[],
                &log,
                &cancel,
            )
            .unwrap_err();
            assert!(matches!(e, PipelineError::Cancelled), "{e}");
        });
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
