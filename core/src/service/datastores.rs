//! Datastores in the window (the Data section): the list, saving one from its YAML, deleting,
//! checking one, and `sync push` / `pull` as jobs with progress and cancel.

use std::sync::Arc;

use super::{Failure, Reply, Service};
use crate::datastores::{self, CheckReport, Datastore, DatastoreSpec};
use crate::sync::{self, Report, Selection};

#[derive(Debug, Clone, PartialEq)]
pub enum DatastoreCommand {
    /// Every datastore.
    Load,
    /// Creates (or, with `replace`, updates) a datastore from its YAML.
    Save {
        yaml: String,
        replace: bool,
    },
    Delete {
        name: String,
    },
    /// Lists the datastore's prefix with its credentials, as a job.
    Check {
        name: String,
    },
    /// `sync push` (or, `push` false, `pull`) with datastore `name`, as a job.
    Sync {
        name: String,
        push: bool,
        selection: Selection,
    },
}

#[derive(Debug)]
pub enum DatastoreEvent {
    Loaded(Reply<Vec<Datastore>>),
    Saved(Reply<Datastore>),
    Deleted {
        name: String,
        reply: Reply<()>,
    },
    Checked {
        name: String,
        reply: Reply<CheckReport>,
    },
    Synced {
        name: String,
        push: bool,
        reply: Reply<Report>,
    },
}

pub(super) fn handle(service: &Service, command: DatastoreCommand) {
    match command {
        DatastoreCommand::Load => service.read(|s| {
            DatastoreEvent::Loaded(
                datastores::list(&s.store)
                    .map(Arc::new)
                    .map_err(Failure::from),
            )
        }),
        DatastoreCommand::Save { yaml, replace } => service.read(move |s| {
            DatastoreEvent::Saved(
                DatastoreSpec::from_yaml(&yaml)
                    .and_then(|spec| datastores::put(&s.store, &spec, replace))
                    .map(Arc::new)
                    .map_err(Failure::from),
            )
        }),
        DatastoreCommand::Delete { name } => service.read(move |s| {
            let reply = datastores::delete(&s.store, &name)
                .map(Arc::new)
                .map_err(Failure::from);
            DatastoreEvent::Deleted { name, reply }
        }),
        // A job, not a read: an endpoint that does not answer holds it for seconds.
        DatastoreCommand::Check { name } => {
            service.job(format!("Checking {name}"), move |shared, _, _| {
                let reply = datastores::check(&shared.store, &name)
                    .map(Arc::new)
                    .map_err(Failure::from);
                shared.emit(DatastoreEvent::Checked { name, reply });
            });
        }
        DatastoreCommand::Sync {
            name,
            push,
            selection,
        } => {
            let label = if push {
                format!("Pushing to {name}")
            } else {
                format!("Pulling from {name}")
            };
            service.job(label, move |shared, _, progress| {
                let run = if push { sync::push } else { sync::pull };
                let reply = run(&shared.store, &name, &selection, sync::THREADS, progress)
                    .map(Arc::new)
                    .map_err(Failure::from);
                shared.emit(DatastoreEvent::Synced { name, push, reply });
            });
        }
    }
}
