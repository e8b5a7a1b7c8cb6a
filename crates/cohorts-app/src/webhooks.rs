//! A pool's outgoing webhooks (seed 003's project service): each group event of the pool is
//! POSTed to every webhook registered before it, signed with HMAC-SHA256 over the body,
//! retried with backoff, and logged per attempt (docs/cohorts.md).
//!
//! Two halves, both in the `webhooks` service role:
//! - [`Dispatcher`], a consumer of `trellis.cohorts`: for each group event it records one
//!   pending delivery per webhook active at the event's position, holding the exact body to
//!   send. `(webhook, event)` is the key, so a redelivered event records nothing new.
//! - [`deliver_periodically`]: claims due deliveries (`FOR UPDATE SKIP LOCKED`, with a lease:
//!   a process that dies mid-send leaves the delivery to be retried when the lease ends),
//!   POSTs them, and records every attempt; a failure backs off 1 s, 2 s, 4 s, … and after
//!   the last attempt the delivery is `failed`.
//!
//! Delivery state is operational, like an outbox, not a read model: no rebuild recreates it
//! (a rebuild must not send anything again). Secrets live beside it, never in an event.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use sqlx::PgPool;
use trellis_cohorts::FieldError;
use trellis_cohorts::group::{CohortGroup, GroupEvent};
use trellis_cohorts::pool::CohortPool;
use trellis_cohorts::webhooks::{PoolWebhooks, WebhookEvent, WebhooksState};
use trellis_kernel::store::read_whole_stream;
use trellis_kernel::{
    Aggregate, Direction, DomainEvent, EventStore, RecordedEvent, StreamId, VariantNames,
};
use trellis_runtime::{EventHandler, HandlerError};
use uuid::Uuid;

/// How deliveries are made.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Deliver to loopback, private and link-local addresses too
    /// (`TRELLIS_WEBHOOKS_ALLOW_PRIVATE=1`; development and tests only: in production a
    /// webhook could otherwise reach the platform's own internal services).
    pub allow_private: bool,
    /// Attempts before a delivery is failed (`TRELLIS_WEBHOOK_MAX_ATTEMPTS`, default 8).
    pub max_attempts: u32,
    /// The first retry's delay; each next one doubles, up to an hour
    /// (`TRELLIS_WEBHOOK_BACKOFF_MS`, default 1,000).
    pub backoff: Duration,
    /// One attempt's limit (10 s).
    pub timeout: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private: false,
            max_attempts: 8,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
        }
    }
}

impl WebhookSettings {
    /// From the process's settings (see the fields).
    ///
    /// # Errors
    /// A value that is not a number.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut settings = Self::default();
        if let Some(value) = lookup("TRELLIS_WEBHOOKS_ALLOW_PRIVATE") {
            settings.allow_private = trellis_edge::config::is_on(&value);
        }
        if let Some(value) = lookup("TRELLIS_WEBHOOK_MAX_ATTEMPTS") {
            settings.max_attempts = value
                .trim()
                .parse::<u32>()
                .map_err(|e| anyhow::anyhow!("TRELLIS_WEBHOOK_MAX_ATTEMPTS: {e}"))?
                .clamp(1, 30);
        }
        if let Some(value) = lookup("TRELLIS_WEBHOOK_BACKOFF_MS") {
            let ms: u64 = value
                .trim()
                .parse()
                .map_err(|e| anyhow::anyhow!("TRELLIS_WEBHOOK_BACKOFF_MS: {e}"))?;
            settings.backoff = Duration::from_millis(ms.clamp(10, 3_600_000));
        }
        Ok(settings)
    }

    /// The delay after failed attempt number `attempt` (1-based).
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        self.backoff
            .saturating_mul(factor)
            .min(Duration::from_secs(3600))
    }
}

/// Addresses a webhook may not reach unless private targets are allowed: loopback,
/// private, link-local, shared (CGNAT), unspecified, multicast and broadcast, and the IPv6
/// unique-local and IPv4-mapped forms of them.
pub fn forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_address(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// A webhook URL the deployment delivers to: the domain's URL rule, and, unless private
/// targets are allowed, no private address literal or local host name (names that resolve to
/// private addresses are refused at delivery, where the name is resolved).
///
/// # Errors
/// What is wrong, naming the field `url`.
pub fn check_target(url: &str, allow_private: bool) -> Result<String, FieldError> {
    let parsed = trellis_cohorts::webhooks::check_url(url.trim())?;
    if !allow_private {
        let private = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => forbidden_address(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => forbidden_address(IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                name == "localhost"
                    || [".localhost", ".local", ".internal"]
                        .iter()
                        .any(|suffix| name.ends_with(suffix))
            }
            None => true,
        };
        if private {
            return Err(FieldError::new(
                "url",
                "must not point at a private, loopback or link-local address",
            ));
        }
    }
    Ok(parsed.to_string())
}

/// A new webhook secret (`whsec_` and 64 hex digits), stored for `webhook_id` of `pool_id`:
/// shown once to whoever registers the webhook, then only used to sign.
///
/// # Errors
/// Database failures.
pub async fn create_secret(
    db: &PgPool,
    webhook_id: Uuid,
    pool_id: Uuid,
) -> Result<String, sqlx::Error> {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("whsec_{}", hex::encode(bytes));
    sqlx::query(
        "INSERT INTO cohort_webhook_secrets (webhook_id, pool_id, secret) VALUES ($1, $2, $3)",
    )
    .bind(webhook_id)
    .bind(pool_id)
    .bind(&secret)
    .execute(db)
    .await?;
    Ok(secret)
}

/// The `Trellis-Signature` header of `body` under `secret`: `sha256=` and the hex
/// HMAC-SHA256 of the exact bytes sent.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What a webhook receives: the event with its place in the log.
#[derive(Serialize)]
struct Body<'a> {
    /// The event id (receivers de-duplicate retries by it).
    id: Uuid,
    /// The event type.
    #[serde(rename = "type")]
    event_type: &'a str,
    /// `trellis.cohorts`.
    source: &'static str,
    /// The stream (`cohort_group-<id>`, `cohort_pool-<id>`).
    subject: String,
    /// When it was recorded.
    time: chrono::DateTime<chrono::Utc>,
    /// Its global position (ordering across retries).
    sequence: i64,
    /// The pool.
    pool_id: Uuid,
    /// The event's payload.
    data: &'a serde_json::Value,
}

/// The pool's group events: what webhooks receive. Queue joins and leaves carry a learner's
/// profile (personal data) and are no group event.
fn delivered(event_type: &str) -> bool {
    GroupEvent::VARIANTS.contains(&event_type)
        || matches!(event_type, "GroupsFormed" | "PoolClosed")
}

/// The dispatcher: records each group event's deliveries.
pub struct Dispatcher {
    store: Arc<dyn EventStore>,
    pool: PgPool,
    /// Group → pool (a group's pool never changes).
    pools: Mutex<HashMap<Uuid, Uuid>>,
}

impl Dispatcher {
    /// A dispatcher over `store` (webhook registrations, groups' pools) and `pool`.
    pub fn new(store: Arc<dyn EventStore>, pool: PgPool) -> Self {
        Self {
            store,
            pool,
            pools: Mutex::default(),
        }
    }

    /// The pool of `event`'s stream: the pool itself, or the group's (from its opening).
    async fn pool_of(&self, event: &RecordedEvent) -> Result<Option<Uuid>, HandlerError> {
        let id = event.stream_id.id();
        if event.stream_id.kind() == CohortPool::KIND {
            return Ok(Some(id));
        }
        if let Some(pool) = self.cached(id) {
            return Ok(Some(pool));
        }
        let stream = StreamId::new(CohortGroup::KIND, id)
            .map_err(|e| HandlerError::from_error("group stream", e))?;
        let first = self
            .store
            .read_stream(&stream, 1, Direction::Forwards, 1)
            .await
            .map_err(|e| HandlerError::from_error("reading the group's opening", e))?;
        let pool = first.first().and_then(|opening| {
            match GroupEvent::from_payload(&opening.event_type, opening.payload.clone()) {
                Ok(GroupEvent::GroupOpened { pool_id, .. }) => Some(pool_id),
                _ => None,
            }
        });
        if let Some(pool) = pool {
            let mut pools = self
                .pools
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if pools.len() > 100_000 {
                pools.clear();
            }
            pools.insert(id, pool);
        }
        Ok(pool)
    }

    fn cached(&self, group: Uuid) -> Option<Uuid> {
        self.pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&group)
            .copied()
    }

    /// The webhooks of `pool` that receive an event at `position`: registered before it and
    /// not removed (since: a removed webhook is sent nothing more, earlier events included).
    /// A pool with no webhook costs one indexed query, not a read of its stream.
    async fn receivers(
        &self,
        pool: Uuid,
        position: i64,
    ) -> Result<Vec<(Uuid, String)>, HandlerError> {
        let live: Vec<Uuid> = sqlx::query_scalar(
            "SELECT webhook_id FROM cohort_webhook_secrets \
             WHERE pool_id = $1 AND removed_at IS NULL",
        )
        .bind(pool)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| HandlerError::from_error("reading the pool's webhooks", e))?;
        if live.is_empty() {
            return Ok(Vec::new());
        }
        // The registrations themselves (their positions) are the stream's.
        let stream = StreamId::new(PoolWebhooks::KIND, pool)
            .map_err(|e| HandlerError::from_error("webhooks stream", e))?;
        let mut state = WebhooksState::default();
        let stored = read_whole_stream(&*self.store, &stream)
            .await
            .map_err(|e| HandlerError::from_error("reading the pool's webhooks", e))?
            .into_iter()
            .take_while(|e| e.global_position.0 < position)
            .collect();
        for recorded in trellis_kernel::personal::prepare(stored)
            .await
            .map_err(|e| HandlerError::from_error("reading a webhook event", e))?
        {
            let event = WebhookEvent::from_payload(&recorded.event_type, recorded.payload)
                .map_err(|e| HandlerError::from_error("a webhook event", e))?;
            PoolWebhooks::evolve(&mut state, &event);
        }
        Ok(state
            .active
            .into_iter()
            .filter(|(id, _)| live.contains(id))
            .collect())
    }

    async fn record(&self, event: &RecordedEvent) -> Result<(), HandlerError> {
        let organization = HandlerError::organization_of(event)?;
        let Some(pool) = self.pool_of(event).await? else {
            return Ok(());
        };
        let hooks = self.receivers(pool, event.global_position.0).await?;
        if hooks.is_empty() {
            return Ok(());
        }
        let body = serde_json::to_vec(&Body {
            id: event.event_id.as_uuid(),
            event_type: &event.event_type,
            source: "trellis.cohorts",
            subject: event.stream_id.to_string(),
            time: event.recorded_at,
            sequence: event.global_position.0,
            pool_id: pool,
            data: &event.payload,
        })
        .map_err(|e| HandlerError::from_error("encoding the body", e))?;
        let (ids, urls): (Vec<Uuid>, Vec<String>) = hooks.into_iter().unzip();
        sqlx::query(
            "INSERT INTO cohort_webhook_deliveries (webhook_id, url, event_id, organization_id, \
                 event_type, global_position, body) \
             SELECT h.webhook_id, h.url, $3, $4, $5, $6, $7 \
             FROM unnest($1::uuid[], $2::text[]) AS h(webhook_id, url) \
             ON CONFLICT (webhook_id, event_id) DO NOTHING",
        )
        .bind(&ids)
        .bind(&urls)
        .bind(event.event_id.as_uuid())
        .bind(organization)
        .bind(&event.event_type)
        .bind(event.global_position.0)
        .bind(&body)
        .execute(&self.pool)
        .await
        .map_err(|e| HandlerError::from_error("recording deliveries", e))?;
        Ok(())
    }
}

#[async_trait]
impl EventHandler for Dispatcher {
    fn name(&self) -> &str {
        "reaction.webhooks"
    }

    fn wants(&self, event_type: &str) -> bool {
        delivered(event_type) || event_type == "WebhookRemoved"
    }

    async fn handle(&self, events: &[RecordedEvent]) -> Result<(), HandlerError> {
        for event in events.iter().filter(|e| self.wants(&e.event_type)) {
            if let Ok(WebhookEvent::WebhookRemoved { webhook_id, .. }) =
                WebhookEvent::from_payload(&event.event_type, event.payload.clone())
            {
                // Nothing more goes to a removed webhook: the worker cancels what is pending
                // (also a delivery recorded while this removal was on its way).
                sqlx::query(
                    "UPDATE cohort_webhook_secrets SET removed_at = now() \
                     WHERE webhook_id = $1 AND removed_at IS NULL",
                )
                .bind(webhook_id)
                .execute(&self.pool)
                .await
                .map_err(|e| HandlerError::from_error("removing a webhook", e))?;
                continue;
            }
            self.record(event).await?;
        }
        Ok(())
    }
}

/// Resolves webhook hosts, refusing private addresses unless allowed: a public name that
/// resolves to an internal address (DNS rebinding) reaches nothing.
struct PublicOnly {
    allow_private: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| allow_private || !forbidden_address(a.ip()))
                .collect();
            if addresses.is_empty() {
                return Err(format!(
                    "{} resolves to no address a webhook may reach",
                    name.as_str()
                )
                .into());
            }
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// The HTTP client deliveries go through: no redirects (a redirect could lead anywhere),
/// the private-address policy in its resolver, a per-attempt timeout.
///
/// # Errors
/// When the client cannot be built (TLS).
pub fn client(settings: &WebhookSettings) -> anyhow::Result<reqwest::Client> {
    // HTTPS goes through rustls with ring's primitives (as the S3 client's).
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .user_agent("Trellis-Webhooks/1")
        .dns_resolver(Arc::new(PublicOnly {
            allow_private: settings.allow_private,
        }))
        .build()?)
}

/// A delivery claimed for one attempt.
#[derive(sqlx::FromRow)]
struct Due {
    webhook_id: Uuid,
    event_id: Uuid,
    url: String,
    body: Vec<u8>,
    event_type: String,
    attempts: i32,
    secret: String,
}

/// How an attempt ended.
struct Outcome {
    status: Option<u16>,
    error: Option<String>,
    millis: i32,
}

impl Outcome {
    fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// How long a claimed delivery stays claimed: longer than any attempt.
const LEASE: Duration = Duration::from_secs(60);

/// Sends every due delivery once (at most 16 at a time); returns how many were attempted.
///
/// # Errors
/// Database failures.
pub async fn deliver_due(
    db: &PgPool,
    client: &reqwest::Client,
    settings: &WebhookSettings,
) -> Result<usize, sqlx::Error> {
    // A removed webhook is sent nothing more, whenever its deliveries were recorded.
    sqlx::query(
        "UPDATE cohort_webhook_deliveries d SET state = 'cancelled' \
         FROM cohort_webhook_secrets s \
         WHERE d.state = 'pending' AND s.webhook_id = d.webhook_id \
           AND s.removed_at IS NOT NULL",
    )
    .execute(db)
    .await?;
    let due: Vec<Due> = sqlx::query_as(
        "WITH due AS ( \
             SELECT d.webhook_id, d.event_id, s.secret FROM cohort_webhook_deliveries d \
             JOIN cohort_webhook_secrets s USING (webhook_id) \
             WHERE d.state = 'pending' AND d.next_attempt_at <= now() \
               AND s.removed_at IS NULL \
             ORDER BY d.next_attempt_at, d.global_position LIMIT 16 FOR UPDATE OF d SKIP LOCKED) \
         UPDATE cohort_webhook_deliveries d \
         SET next_attempt_at = now() + make_interval(secs => $1), attempts = d.attempts + 1 \
         FROM due WHERE d.webhook_id = due.webhook_id AND d.event_id = due.event_id \
         RETURNING d.webhook_id, d.event_id, d.url, d.body, d.event_type, d.attempts, \
             due.secret",
    )
    .bind(LEASE.as_secs_f64())
    .fetch_all(db)
    .await?;
    let count = due.len();
    let sent = futures::future::join_all(due.into_iter().map(|d| async move {
        let outcome = attempt(client, &d).await;
        (d, outcome)
    }))
    .await;
    for (delivery, outcome) in sent {
        record_attempt(db, settings, &delivery, &outcome).await?;
    }
    Ok(count)
}

async fn attempt(client: &reqwest::Client, delivery: &Due) -> Outcome {
    let started = std::time::Instant::now();
    let response = client
        .post(&delivery.url)
        .header("content-type", "application/json")
        .header(
            "trellis-signature",
            signature(&delivery.secret, &delivery.body),
        )
        .header("trellis-webhook-id", delivery.webhook_id.to_string())
        .header("trellis-event-id", delivery.event_id.to_string())
        .header("trellis-event-type", &delivery.event_type)
        .header("trellis-delivery-attempt", delivery.attempts.to_string())
        .body(delivery.body.clone())
        .send()
        .await;
    let millis = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    match response {
        Ok(response) => {
            let status = response.status().as_u16();
            let error = (!response.status().is_success())
                .then(|| format!("answered {}", response.status()));
            Outcome {
                status: Some(status),
                error,
                millis,
            }
        }
        Err(e) => {
            // The error's whole chain (the resolver's refusal is inside).
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                message.push_str(": ");
                message.push_str(&cause.to_string());
                source = cause.source();
            }
            Outcome {
                status: None,
                error: Some(message.chars().take(500).collect()),
                millis,
            }
        }
    }
}

async fn record_attempt(
    db: &PgPool,
    settings: &WebhookSettings,
    delivery: &Due,
    outcome: &Outcome,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO cohort_webhook_attempts (webhook_id, event_id, attempt, status, error, \
             duration_ms) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(delivery.webhook_id)
    .bind(delivery.event_id)
    .bind(delivery.attempts)
    .bind(outcome.status.map(i32::from))
    .bind(&outcome.error)
    .bind(outcome.millis)
    .execute(&mut *tx)
    .await?;
    let attempts = u32::try_from(delivery.attempts).unwrap_or(u32::MAX);
    let (state, delay) = if outcome.delivered() {
        ("delivered", Duration::ZERO)
    } else if attempts >= settings.max_attempts {
        ("failed", Duration::ZERO)
    } else {
        ("pending", settings.delay_after(attempts))
    };
    // A webhook removed meanwhile stays cancelled.
    sqlx::query(
        "UPDATE cohort_webhook_deliveries SET state = $3, \
             next_attempt_at = now() + make_interval(secs => $4), \
             delivered_at = CASE WHEN $3 = 'delivered' THEN now() END \
         WHERE webhook_id = $1 AND event_id = $2 AND state = 'pending'",
    )
    .bind(delivery.webhook_id)
    .bind(delivery.event_id)
    .bind(state)
    .bind(delay.as_secs_f64())
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Delivers due webhooks until `shutdown` resolves, looking every 200 ms.
pub async fn deliver_periodically(
    db: PgPool,
    client: reqwest::Client,
    settings: WebhookSettings,
    shutdown: BoxFuture<'static, ()>,
) {
    tokio::pin!(shutdown);
    loop {
        match deliver_due(&db, &client, &settings).await {
            // More may be due right away.
            Ok(16..) => continue,
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "webhook deliveries cannot be read; retrying"),
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AttemptView {
    /// 1, 2, …
    pub attempt: i32,
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
    /// The receiver's HTTP status, if it answered.
    #[schema(nullable = true)]
    pub status: Option<i32>,
    /// What went wrong.
    #[schema(nullable = true)]
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: i32,
}

/// One event's delivery to a webhook.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DeliveryView {
    /// The event.
    pub event_id: Uuid,
    /// Its type.
    pub event_type: String,
    /// Its global position.
    pub sequence: i64,
    /// `pending`, `delivered`, `failed` or `cancelled` (the webhook was removed).
    pub state: String,
    /// Attempts so far.
    pub attempts: i32,
    /// When the next attempt is due (pending only).
    #[schema(nullable = true)]
    pub next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it was delivered.
    #[schema(nullable = true)]
    pub delivered_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the event was recorded for delivery.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Every attempt, oldest first.
    #[sqlx(json)]
    pub log: Vec<AttemptView>,
}

/// The delivery log of the organization's webhook `webhook_id`, newest first.
///
/// # Errors
/// Database failures.
pub async fn deliveries(
    db: &PgPool,
    organization_id: Uuid,
    webhook_id: Uuid,
    limit: i64,
) -> Result<Vec<DeliveryView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT d.event_id, d.event_type, d.global_position AS sequence, d.state, d.attempts, \
                CASE WHEN d.state = 'pending' THEN d.next_attempt_at END AS next_attempt_at, \
                d.delivered_at, d.created_at, \
                COALESCE((SELECT jsonb_agg(jsonb_build_object('attempt', a.attempt, \
                    'at', a.at, 'status', a.status, 'error', a.error, \
                    'duration_ms', a.duration_ms) ORDER BY a.attempt) \
                  FROM cohort_webhook_attempts a \
                  WHERE a.webhook_id = d.webhook_id AND a.event_id = d.event_id), '[]') AS log \
         FROM cohort_webhook_deliveries d \
         WHERE d.organization_id = $1 AND d.webhook_id = $2 \
         ORDER BY d.global_position DESC LIMIT $3",
    )
    .bind(organization_id)
    .bind(webhook_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://10.1.2.3/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/hook",
            "http://[fd00::1]/hook",
            "http://[::ffff:192.168.0.1]/hook",
            "http://localhost/hook",
            "http://db.internal/hook",
            "http://100.64.0.1/hook",
        ] {
            assert!(check_target(url, false).is_err(), "{url}");
            assert!(check_target(url, true).is_ok(), "{url}");
        }
        assert!(check_target("https://hooks.example.com/trellis", false).is_ok());
        assert!(check_target("https://93.184.216.34/trellis", false).is_ok());
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        let mac = signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            mac,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn retries_back_off_exponentially_up_to_an_hour() {
        let settings = WebhookSettings::default();
        assert_eq!(settings.delay_after(1), Duration::from_secs(1));
        assert_eq!(settings.delay_after(2), Duration::from_secs(2));
        assert_eq!(settings.delay_after(4), Duration::from_secs(8));
        assert_eq!(settings.delay_after(40), Duration::from_secs(3600));
    }
}
