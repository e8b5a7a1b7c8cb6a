//! A pool's outgoing webhooks: the URLs each group event of the pool is POSTed to.
//!
//! Its own small stream per pool (`cohort_webhooks-<pool id>`), not the pool's: the webhook
//! dispatcher reads it for every event it delivers, and the pool's stream holds the whole
//! queue. The signing secret is no part of any event (it would reach every Kafka copy): the
//! application keeps it beside the stream (docs/cohorts.md).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use trellis_kernel::text::check_web_url;
use trellis_kernel::{Aggregate, DomainEvent};
use uuid::Uuid;

use crate::FieldError;
use crate::limits::{WEBHOOK_URL_MAX, WEBHOOKS_MAX};

/// Commands.
#[derive(Debug, Clone)]
pub enum WebhookCommand {
    /// Deliver the pool's group events to `url`.
    Register {
        /// The new webhook's id.
        webhook_id: Uuid,
        /// `http://` or `https://`, no credentials.
        url: String,
        /// Who registered it.
        registered_by: Uuid,
    },
    /// Stop delivering to a webhook.
    Remove {
        /// The webhook.
        webhook_id: Uuid,
        /// Who removed it.
        removed_by: Uuid,
    },
}

/// Events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, strum::VariantNames)]
#[serde(tag = "event_type", content = "payload")]
pub enum WebhookEvent {
    /// A webhook was registered: events recorded after this one are delivered to it.
    WebhookRegistered {
        /// The webhook.
        webhook_id: Uuid,
        /// Where to.
        url: String,
        /// Who registered it.
        registered_by: Uuid,
    },
    /// A webhook was removed: nothing more is delivered to it.
    WebhookRemoved {
        /// The webhook.
        webhook_id: Uuid,
        /// Who removed it.
        removed_by: Uuid,
    },
}

impl DomainEvent for WebhookEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::WebhookRegistered { .. } => "WebhookRegistered",
            Self::WebhookRemoved { .. } => "WebhookRemoved",
        }
    }
}

/// State: the active webhooks and their URLs.
#[derive(Debug, Default, Clone, Serialize)]
pub struct WebhooksState {
    /// Active webhooks.
    pub active: BTreeMap<Uuid, String>,
    /// Every webhook ever registered (a removed id is not registered again).
    pub known: std::collections::BTreeSet<Uuid>,
}

/// Rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// No such webhook (404).
    #[error("no such webhook")]
    NotFound,
    /// The URL is registered already (409).
    #[error("this URL is registered already")]
    Duplicate,
    /// A request field breaks a rule (422 naming it).
    #[error(transparent)]
    Field(#[from] FieldError),
}

/// The aggregate (its id is the pool's).
pub struct PoolWebhooks;

/// Checks a webhook URL: a web URL as every link is (`check_web_url`: absolute `http`/`https`
/// with a host, no whitespace, control or bidirectional characters), no user name or password
/// (a secret in a URL ends up in logs), no fragment, and at most 2,000 characters as stored
/// (normalised: punycode and percent-encoding may lengthen it). Where it may point (private
/// addresses) is the application's policy, not this rule's.
///
/// # Errors
/// What is wrong, naming the field `url`.
pub fn check_url(url: &str) -> Result<url::Url, FieldError> {
    let bad = |reason: String| FieldError::new("url", reason);
    check_web_url(url, WEBHOOK_URL_MAX).map_err(|p| bad(p.to_string()))?;
    let parsed = url::Url::parse(url).map_err(|e| bad(format!("is not a URL ({e})")))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("must not carry a user name or password".into()));
    }
    if parsed.fragment().is_some() {
        return Err(bad("must not have a #fragment".into()));
    }
    if parsed.as_str().chars().count() > WEBHOOK_URL_MAX {
        return Err(bad(format!(
            "must be at most {WEBHOOK_URL_MAX} characters once normalised"
        )));
    }
    Ok(parsed)
}

impl Aggregate for PoolWebhooks {
    const KIND: &'static str = "cohort_webhooks";
    type State = WebhooksState;
    type Command = WebhookCommand;
    type Event = WebhookEvent;
    type Error = WebhookError;

    fn decide(
        state: &WebhooksState,
        command: &WebhookCommand,
    ) -> Result<Vec<WebhookEvent>, WebhookError> {
        match command {
            WebhookCommand::Register {
                webhook_id,
                url,
                registered_by,
            } => {
                if state.known.contains(webhook_id) {
                    return Ok(Vec::new());
                }
                let url = check_url(url.trim())?.to_string();
                if state.active.values().any(|u| *u == url) {
                    return Err(WebhookError::Duplicate);
                }
                if state.active.len() >= WEBHOOKS_MAX {
                    return Err(FieldError::new(
                        "url",
                        format!("a pool has at most {WEBHOOKS_MAX} webhooks"),
                    )
                    .into());
                }
                Ok(vec![WebhookEvent::WebhookRegistered {
                    webhook_id: *webhook_id,
                    url,
                    registered_by: *registered_by,
                }])
            }
            WebhookCommand::Remove {
                webhook_id,
                removed_by,
            } => {
                if !state.known.contains(webhook_id) {
                    return Err(WebhookError::NotFound);
                }
                if !state.active.contains_key(webhook_id) {
                    return Ok(Vec::new());
                }
                Ok(vec![WebhookEvent::WebhookRemoved {
                    webhook_id: *webhook_id,
                    removed_by: *removed_by,
                }])
            }
        }
    }

    fn evolve(state: &mut WebhooksState, event: &WebhookEvent) {
        match event {
            WebhookEvent::WebhookRegistered {
                webhook_id, url, ..
            } => {
                state.known.insert(*webhook_id);
                state.active.insert(*webhook_id, url.clone());
            }
            WebhookEvent::WebhookRemoved { webhook_id, .. } => {
                state.active.remove(webhook_id);
            }
        }
    }
}
