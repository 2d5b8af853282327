//! The words the panels share: the window's sections, a link from one view to another
//! (`Navigate`), and what the window asks of the shell around it (`ShellRequest`).

/// What the window asks of the shell around it (the native file dialogs live in the app).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellRequest {
    PickFiles,
    PickFolder,
    /// A pipeline YAML to open in the designer.
    PickPipeline,
    /// Where to export the designer's pipeline.
    ExportPipeline,
    /// Where to export the open labeling project.
    ExportLabels,
    /// A label file (or folder) to start a labeling project from.
    PickLabels,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Section {
    #[default]
    Data,
    Experiments,
    Models,
    Labeling,
    Pipelines,
    Endpoints,
    Monitoring,
}

/// A link from one view to something shown in another section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Navigate {
    Asset(String, i64),
    Run(String),
    Model(String),
    Endpoint(String),
    /// A labeling project, by name.
    LabelingProject(String),
}
