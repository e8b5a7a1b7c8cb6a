//! Which context (and so which topic) a stream belongs to, by its aggregate kind.

use std::collections::HashMap;

/// A stream kind no route names: the relay parks its records (loudly) instead of publishing
/// them anywhere.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no context module declares the stream kind `{0}`")]
pub struct UnknownKind(pub String);

/// Aggregate kind -> bounded context, built from the context modules
/// (`Routing::from_routes(trellis_contexts::modules().routes())`, ADR 0011).
#[derive(Debug, Clone, Default)]
pub struct Routing {
    contexts: HashMap<String, String>,
}

impl Routing {
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

    /// A table of (stream kind, context) pairs, as the context modules declare them.
    pub fn from_routes<'a>(routes: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        routes
            .into_iter()
            .fold(Self::new(), |routing, (kind, context)| {
                routing.route(kind, context)
            })
    }

    /// The context of a stream kind.
    ///
    /// # Errors
    /// [`UnknownKind`] naming a kind no route declares.
    pub fn context_of(&self, kind: &str) -> Result<&str, UnknownKind> {
        self.contexts
            .get(kind)
            .map(String::as_str)
            .ok_or_else(|| UnknownKind(kind.to_owned()))
    }

    /// Every context routed to (for topic creation).
    pub fn contexts(&self) -> Vec<String> {
        let mut contexts: Vec<String> = self.contexts.values().cloned().collect();
        contexts.sort();
        contexts.dedup();
        contexts
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_kind_is_an_error_naming_it() {
        let routing = Routing::from_routes([("idp", "development")]);
        assert_eq!(routing.context_of("idp").unwrap(), "development");
        let error = routing.context_of("mystery").unwrap_err();
        assert_eq!(
            error.to_string(),
            "no context module declares the stream kind `mystery`"
        );
    }
}
