//! Promotion in the window: a version's gates for an alias with the approvals and the model's
//! decisions, saving a policy, approving, and promoting (which moves the alias only when every
//! gate passes, and records the decision either way).

use std::sync::Arc;

use super::{Failure, Reply, Service, Shared};
use crate::promotion::{self, Approval, Decision, Evaluation, Policy};

#[derive(Debug, Clone, PartialEq)]
pub enum PromotionCommand {
    /// The gates of `model:version` for `alias`, its approvals and the model's decisions.
    Load {
        model: String,
        version: String,
        alias: String,
    },
    /// Sets the policy of the model its YAML names.
    SavePolicy { yaml: String },
    /// Records the user's approval of `model:version` for `alias`.
    Approve {
        model: String,
        version: String,
        alias: String,
        comment: String,
    },
    Promote {
        model: String,
        version: String,
        alias: String,
    },
}

/// What the promotion view shows.
#[derive(Debug, Clone)]
pub struct PromotionView {
    /// The model's policy as written, if it has one.
    pub policy: Option<String>,
    pub evaluation: Evaluation,
    pub approvals: Vec<Approval>,
    /// The model's decisions, newest first.
    pub decisions: Vec<Decision>,
}

#[derive(Debug)]
pub enum PromotionEvent {
    Loaded {
        model: String,
        version: String,
        alias: String,
        reply: Reply<PromotionView>,
    },
    PolicySaved(Reply<Policy>),
    Approved(Reply<()>),
    Decided(Reply<Decision>),
}

pub(super) fn handle(service: &Service, command: PromotionCommand) {
    match command {
        PromotionCommand::Load {
            model,
            version,
            alias,
        } => service.read(move |s| {
            let reply = view(s, &model, &version, &alias)
                .map(Arc::new)
                .map_err(Failure::from);
            PromotionEvent::Loaded {
                model,
                version,
                alias,
                reply,
            }
        }),
        PromotionCommand::SavePolicy { yaml } => service.read(move |s| {
            PromotionEvent::PolicySaved(
                promotion::set_policy(&s.store, &yaml)
                    .map(Arc::new)
                    .map_err(Failure::from),
            )
        }),
        PromotionCommand::Approve {
            model,
            version,
            alias,
            comment,
        } => service.read(move |s| {
            PromotionEvent::Approved(
                promotion::approve(
                    &s.store,
                    &model,
                    &version,
                    &alias,
                    &promotion::current_user(),
                    &comment,
                )
                .map(Arc::new)
                .map_err(Failure::from),
            )
        }),
        PromotionCommand::Promote {
            model,
            version,
            alias,
        } => service.read(move |s| {
            PromotionEvent::Decided(
                promotion::promote(
                    &s.store,
                    &model,
                    &version,
                    &alias,
                    &promotion::current_user(),
                )
                .map(Arc::new)
                .map_err(Failure::from),
            )
        }),
    }
}

fn view(shared: &Shared, model: &str, version: &str, alias: &str) -> crate::Result<PromotionView> {
    let store = &shared.store;
    Ok(PromotionView {
        policy: promotion::policy(store, model)?.map(|(_, text)| text),
        evaluation: promotion::evaluate(store, model, version, alias)?,
        approvals: promotion::approvals(store, model, version, alias)?,
        decisions: promotion::decisions(store, model)?,
    })
}
