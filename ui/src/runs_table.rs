//! The runs table: every run of the chosen experiments, virtualized (only visible rows are laid
//! out, so 100,000 runs scroll like 100), with columns chosen from the runs' metrics, params and
//! tags, sorting by any column, and check boxes that pick runs to compare.

use std::collections::BTreeSet;
use std::sync::Arc;

use egui_extras::{Column, TableBuilder};
use lathe_core::format;
use lathe_core::tracking::browse::{RunRow, RunTable};

/// A column of the table, by what it shows (kept by name, so it survives a reload).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RunColumn {
    Name,
    Status,
    Started,
    Duration,
    Metric(String),
    Param(String),
    Tag(String),
}

impl RunColumn {
    fn title(&self) -> String {
        match self {
            Self::Name => "Run".into(),
            Self::Status => "Status".into(),
            Self::Started => "Started".into(),
            Self::Duration => "Duration".into(),
            Self::Metric(k) => k.clone(),
            Self::Param(k) => k.clone(),
            Self::Tag(k) => k.clone(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Metric(_) => "metric",
            Self::Param(_) => "param",
            Self::Tag(_) => "tag",
            _ => "",
        }
    }
}

/// A cell's value, for display and for sorting.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Cell<'a> {
    Missing,
    Number(f64),
    Text(&'a str),
}

/// A heading of the column chooser: its title, its keys, and how a key becomes a column.
type ColumnGroup<'a> = (&'a str, &'a [String], fn(String) -> RunColumn);

/// What a click in the table asks for.
pub enum TableAction {
    Open(String),
    /// Fold or unfold the runs nested under this one.
    Toggle(String),
}

/// A row on screen: a run (by index into `table.runs`), how deep it is nested, and how many
/// runs are nested directly under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shown {
    index: u32,
    depth: u8,
    children: u32,
}

#[derive(Default)]
pub struct RunsTable {
    pub table: Arc<RunTable>,
    /// Row order as indexes into `table.runs`.
    order: Vec<u32>,
    /// The rows on screen: runs in `order`, each run's steps or trials under it (as MLflow
    /// nests runs by `mlflow.parentRunId`), folded unless expanded.
    shown: Vec<Shown>,
    /// Runs whose nested runs are unfolded.
    expanded: BTreeSet<String>,
    sort: Option<(RunColumn, bool)>,
    pub columns: Vec<RunColumn>,
    pub checked: BTreeSet<String>,
    columns_chosen: bool,
}

impl RunsTable {
    /// Takes a freshly loaded table, keeping the sort, the columns and the checked runs.
    pub fn set(&mut self, table: Arc<RunTable>) {
        self.table = table;
        if !self.columns_chosen {
            self.columns = default_columns(&self.table);
        }
        let ids: BTreeSet<&str> = self.table.runs.iter().map(|r| r.run_id.as_str()).collect();
        self.checked.retain(|id| ids.contains(id.as_str()));
        self.resort();
    }

    fn cell<'a>(&'a self, run: &'a RunRow, column: &RunColumn) -> Cell<'a> {
        let text = |values: &'a [Option<String>], keys: &[String], key: &str| {
            keys.iter()
                .position(|k| k == key)
                .and_then(|i| values.get(i)?.as_deref())
                .map_or(Cell::Missing, Cell::Text)
        };
        match column {
            RunColumn::Name => Cell::Text(&run.name),
            RunColumn::Status => Cell::Text(&run.status),
            RunColumn::Started => run
                .start_time
                .map_or(Cell::Missing, |t| Cell::Number(t as f64)),
            RunColumn::Duration => match (run.start_time, run.end_time) {
                (Some(s), Some(e)) => Cell::Number((e - s) as f64),
                _ => Cell::Missing,
            },
            RunColumn::Metric(key) => self
                .table
                .metric_keys
                .iter()
                .position(|k| k == key)
                .and_then(|i| run.metrics.get(i).copied().flatten())
                .map_or(Cell::Missing, Cell::Number),
            RunColumn::Param(key) => text(&run.params, &self.table.param_keys, key),
            RunColumn::Tag(key) => text(&run.tags, &self.table.tag_keys, key),
        }
    }

    fn resort(&mut self) {
        self.sort_rows();
        self.nest();
    }

    /// The rows on screen from `order`: a run whose parent is in the table goes under it, in
    /// the same order as its siblings; the others are the top level.
    fn nest(&mut self) {
        use std::collections::HashMap;
        let runs = &self.table.runs;
        let index: HashMap<&str, u32> = runs
            .iter()
            .enumerate()
            .map(|(i, r)| (r.run_id.as_str(), i as u32))
            .collect();
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut roots = Vec::new();
        for &i in &self.order {
            let parent = runs[i as usize]
                .parent_run_id
                .as_deref()
                .and_then(|p| index.get(p))
                .filter(|&&p| p != i);
            match parent {
                Some(&p) => children.entry(p).or_default().push(i),
                None => roots.push(i),
            }
        }
        let mut shown = Vec::with_capacity(self.order.len());
        let mut stack: Vec<(u32, u8)> = roots.into_iter().rev().map(|i| (i, 0)).collect();
        while let Some((i, depth)) = stack.pop() {
            let under = children.get(&i).map_or(&[][..], Vec::as_slice);
            shown.push(Shown {
                index: i,
                depth,
                children: under.len() as u32,
            });
            // Nesting deeper than a few levels is a loop in the tags; stop there.
            if depth < 8 && self.expanded.contains(&runs[i as usize].run_id) {
                stack.extend(under.iter().rev().map(|&c| (c, depth + 1)));
            }
        }
        self.shown = shown;
    }

    /// Folds or unfolds the runs nested under `run_id`.
    pub fn toggle(&mut self, run_id: &str) {
        if !self.expanded.remove(run_id) {
            self.expanded.insert(run_id.to_owned());
        }
        self.nest();
    }

    fn sort_rows(&mut self) {
        self.order = (0..self.table.runs.len() as u32).collect();
        let Some((column, ascending)) = self.sort.clone() else {
            return;
        };
        // Numbers that look like numbers sort as numbers, even in params ("0.01" < "0.1").
        let key = |run: &RunRow| match self.cell(run, &column) {
            Cell::Missing => (1, 0.0, String::new()),
            Cell::Number(n) => (0, if n.is_nan() { f64::INFINITY } else { n }, String::new()),
            Cell::Text(t) => match t.parse::<f64>() {
                Ok(n) => (0, n, String::new()),
                Err(_) => (0, 0.0, t.to_owned()),
            },
        };
        let keys: Vec<(i32, f64, String)> = self.table.runs.iter().map(key).collect();
        self.order.sort_by(|&a, &b| {
            let (ka, kb) = (&keys[a as usize], &keys[b as usize]);
            // Missing values go last whichever way the column sorts.
            ka.0.cmp(&kb.0).then_with(|| {
                let o = ka.1.total_cmp(&kb.1).then_with(|| ka.2.cmp(&kb.2));
                if ascending { o } else { o.reverse() }
            })
        });
    }

    /// The column chooser: metrics, params and tags as check boxes.
    pub fn columns_menu_ui(&mut self, ui: &mut egui::Ui) {
        ui.menu_button("Columns…", |ui| {
            egui::ScrollArea::vertical()
                .max_height(400.0)
                .show(ui, |ui| {
                    let table = Arc::clone(&self.table);
                    let groups: [ColumnGroup<'_>; 3] = [
                        ("Metrics", &table.metric_keys, RunColumn::Metric),
                        ("Params", &table.param_keys, RunColumn::Param),
                        ("Tags", &table.tag_keys, RunColumn::Tag),
                    ];
                    for (title, keys, make) in groups {
                        if keys.is_empty() {
                            continue;
                        }
                        ui.strong(title);
                        for key in keys {
                            let column = make(key.clone());
                            let mut shown = self.columns.contains(&column);
                            if ui.checkbox(&mut shown, key).changed() {
                                self.columns_chosen = true;
                                if shown {
                                    self.columns.push(column);
                                } else {
                                    self.columns.retain(|c| *c != column);
                                }
                            }
                        }
                        ui.separator();
                    }
                });
        });
    }

    pub fn ui(&mut self, ui: &mut egui::Ui) -> Option<TableAction> {
        let mut action = None;
        let mut sort_by = None;
        let fixed = [
            RunColumn::Name,
            RunColumn::Status,
            RunColumn::Started,
            RunColumn::Duration,
        ];
        let columns: Vec<RunColumn> = fixed
            .into_iter()
            .chain(self.columns.iter().cloned())
            .collect();
        egui::ScrollArea::horizontal().show(ui, |ui| {
            self.grid_ui(ui, &columns, &mut action, &mut sort_by);
        });
        if let Some(column) = sort_by {
            let ascending = match &self.sort {
                Some((c, asc)) if *c == column => !asc,
                _ => !matches!(column, RunColumn::Started | RunColumn::Metric(_)),
            };
            self.sort = Some((column, ascending));
            self.resort();
        }
        action
    }

    fn grid_ui(
        &mut self,
        ui: &mut egui::Ui,
        columns: &[RunColumn],
        action: &mut Option<TableAction>,
        sort_by: &mut Option<RunColumn>,
    ) {
        let mut builder = TableBuilder::new(ui)
            .striped(true)
            .resizable(true)
            .auto_shrink(false)
            .column(Column::exact(22.0));
        for column in columns {
            let width = match column {
                RunColumn::Name => 180.0,
                RunColumn::Started => 150.0,
                _ => 96.0,
            };
            builder = builder.column(Column::initial(width).at_least(40.0).clip(true));
        }
        builder
            .header(22.0, |mut header| {
                header.col(|ui| {
                    ui.label("");
                });
                for column in columns {
                    header.col(|ui| {
                        let arrow = match &self.sort {
                            Some((c, true)) if c == column => " ⬆",
                            Some((c, false)) if c == column => " ⬇",
                            _ => "",
                        };
                        let response = ui
                            .add(
                                egui::Button::new(
                                    egui::RichText::new(format!("{}{arrow}", column.title()))
                                        .strong(),
                                )
                                .frame(false),
                            )
                            .on_hover_text(format!("{} — click to sort", column.kind()));
                        if response.clicked() {
                            *sort_by = Some(column.clone());
                        }
                    });
                }
            })
            .body(|body| {
                body.rows(20.0, self.shown.len(), |mut row| {
                    let Some((run, shown)) = self.shown.get(row.index()).and_then(|shown| {
                        Some((self.table.runs.get(shown.index as usize)?, *shown))
                    }) else {
                        return;
                    };
                    row.col(|ui| {
                        let mut checked = self.checked.contains(&run.run_id);
                        let response = ui.checkbox(&mut checked, "");
                        // Named for screen readers (and tests): the box has no visible text.
                        response.widget_info(|| {
                            egui::WidgetInfo::selected(
                                egui::Role::CheckBox,
                                true,
                                checked,
                                format!("Compare {}", run.name),
                            )
                        });
                        if response.on_hover_text("Compare").changed() {
                            if checked {
                                self.checked.insert(run.run_id.clone());
                            } else {
                                self.checked.remove(&run.run_id);
                            }
                        }
                    });
                    for column in columns {
                        row.col(|ui| {
                            if *column == RunColumn::Name {
                                // Top-aligned, as the other cells of the row.
                                ui.horizontal_top(|ui| {
                                    ui.add_space(f32::from(shown.depth) * 14.0);
                                    if shown.children > 0 {
                                        let open = self.expanded.contains(&run.run_id);
                                        let toggle = ui
                                            .add(
                                                egui::Button::new(if open { "⏷" } else { "⏵" })
                                                    .frame(false)
                                                    .small(),
                                            )
                                            .on_hover_text(format!(
                                                "{} the {} runs nested under {}",
                                                if open { "Fold" } else { "Unfold" },
                                                shown.children,
                                                run.name
                                            ));
                                        if toggle.clicked() {
                                            *action = Some(TableAction::Toggle(run.run_id.clone()));
                                        }
                                    }
                                    if ui.link(&run.name).on_hover_text(&run.run_id).clicked() {
                                        *action = Some(TableAction::Open(run.run_id.clone()));
                                    }
                                });
                                return;
                            }
                            let text = match (column, self.cell(run, column)) {
                                (_, Cell::Missing) => String::new(),
                                (RunColumn::Started, Cell::Number(ms)) => {
                                    format::timestamp((ms / 1000.0) as i64)
                                }
                                (RunColumn::Duration, Cell::Number(ms)) => duration_text(ms),
                                (_, Cell::Number(n)) => format::number(n),
                                (_, Cell::Text(t)) => t.to_owned(),
                            };
                            ui.label(text);
                        });
                    }
                });
            });
    }
}

/// The first few metrics and params, so a new table shows something useful.
fn default_columns(table: &RunTable) -> Vec<RunColumn> {
    let metrics = table
        .metric_keys
        .iter()
        .take(6)
        .cloned()
        .map(RunColumn::Metric);
    let params = table
        .param_keys
        .iter()
        .take(4)
        .cloned()
        .map(RunColumn::Param);
    metrics.chain(params).collect()
}

pub fn duration_text(ms: f64) -> String {
    let secs = ms / 1000.0;
    if secs < 60.0 {
        format!("{secs:.1} s")
    } else if secs < 3600.0 {
        format!("{:.1} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
}
