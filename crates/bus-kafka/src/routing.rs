//! Which context (and so which topic) a stream belongs to, by its aggregate kind.

use std::collections::HashMap;

/// Aggregate kind -> bounded context. Each context crate registers its kinds at start-up.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    contexts: HashMap<String, String>,
}

impl Routing {
    /// Context used for kinds nobody registered, so the relay never stalls on them.
    pub const UNROUTED: &'static str = "unrouted";

    /// An empty routing table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes streams of `kind` to `context`.
    #[must_use]
    pub fn route(mut self, kind: &str, context: &str) -> Self {
        self.contexts.insert(kind.to_owned(), context.to_owned());
        self
    }

    /// The context of a stream kind.
    pub fn context_of(&self, kind: &str) -> &str {
        self.contexts
            .get(kind)
            .map_or(Self::UNROUTED, String::as_str)
    }

    /// Every context routed to (for topic creation).
    pub fn contexts(&self) -> Vec<String> {
        let mut contexts: Vec<String> = self.contexts.values().cloned().collect();
        contexts.sort();
        contexts.dedup();
        contexts
    }

    /// The routing of every context Trellis has: SPEC §4's six topics, plus `demo` for the
    /// kernel's demo aggregate. Later contexts add their kinds here.
    pub fn trellis() -> Self {
        Self::new()
            .route("tally", "demo")
            .route("organization", "identity")
            .route("user", "identity")
            .route("email_claim", "identity")
            .route("skill", "development")
            .route("resource", "development")
            .route("review", "development")
            .route("idp", "development")
            .route("skill_profile", "career")
    }

    /// SPEC §4's contexts, whether or not any kind is routed to them yet.
    pub const SPEC_CONTEXTS: [&'static str; 6] = [
        "identity",
        "development",
        "career",
        "content",
        "cohorts",
        "jobsearch",
    ];
}
