//! Supersession (BRIEF section 8): a source type may declare in its manifest that it
//! supersedes others (a SaaS-management connector supersedes a direct connector). While an
//! **enabled** connection of a superseding type exists, the licenses imported by every
//! connection of a superseded type read as `retired` in reports and exports, and leave the
//! totals. Nothing is written: retirement is decided each time a report or export is read, so
//! disabling or removing the superseding connection restores the licenses at once.

use std::collections::{BTreeMap, BTreeSet};

use crate::plugins::Registry;

/// The supersession rules of the loaded source types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Supersession {
    /// Superseding source type → the source types it supersedes.
    rules: BTreeMap<String, BTreeSet<String>>,
    /// Every source type whose manifest was seen (with or without rules).
    known: BTreeSet<String>,
}

/// What supersession needs to know of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionFacts<'a> {
    /// The connection's name.
    pub name: &'a str,
    /// Its source type.
    pub source_type: &'a str,
    /// Whether it is enabled (only enabled connections supersede).
    pub enabled: bool,
}

/// Which connections are retired, and by whom.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retirement {
    /// Retired connection name → the enabled superseding connections' names (sorted).
    pub retired_by: BTreeMap<String, Vec<String>>,
    /// Things the operator should know (a connection whose plugin is not loaded, so whether
    /// it supersedes anything cannot be told).
    pub warnings: Vec<String>,
}

impl Retirement {
    /// The superseding connections of `connection`; empty when it is not retired.
    pub fn of(&self, connection: &str) -> &[String] {
        self.retired_by.get(connection).map_or(&[], Vec::as_slice)
    }
}

impl Supersession {
    /// No rules, no known source types.
    pub fn new() -> Self {
        Supersession::default()
    }

    /// Declares a source type and the source types it supersedes (its manifest's
    /// `supersedes`). A source type never supersedes itself.
    pub fn declare<S: AsRef<str>>(&mut self, source_type: &str, supersedes: &[S]) {
        self.known.insert(source_type.to_owned());
        let superseded: BTreeSet<String> = supersedes
            .iter()
            .map(|s| s.as_ref().to_owned())
            .filter(|s| s != source_type)
            .collect();
        if !superseded.is_empty() {
            self.rules
                .entry(source_type.to_owned())
                .or_default()
                .extend(superseded);
        }
    }

    /// The rules of every source type the loaded plugins offer.
    pub fn from_registry(registry: &Registry) -> Self {
        let mut rules = Supersession::new();
        for plugin in registry.plugins() {
            for source_type in &plugin.manifest.source_types {
                rules.declare(&source_type.id, &source_type.supersedes);
            }
        }
        rules
    }

    /// Decides which of `connections` are retired: those whose source type is superseded by
    /// the source type of another enabled connection.
    pub fn retirement(&self, connections: &[ConnectionFacts<'_>]) -> Retirement {
        let mut retirement = Retirement::default();
        // Superseded source type → enabled superseding connections.
        let mut superseded: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for connection in connections.iter().filter(|c| c.enabled) {
            if !self.known.contains(connection.source_type) {
                retirement.warnings.push(format!(
                    "connection `{}` is of source type `{}`, which no loaded plugin offers, so \
                     whether it supersedes other connections is unknown; check `invhost plugins`",
                    connection.name, connection.source_type
                ));
                continue;
            }
            for target in self.rules.get(connection.source_type).into_iter().flatten() {
                superseded
                    .entry(target.as_str())
                    .or_default()
                    .push(connection.name);
            }
        }
        for connection in connections {
            if let Some(by) = superseded.get(connection.source_type) {
                let mut by: Vec<String> = by
                    .iter()
                    .filter(|name| **name != connection.name)
                    .map(|name| (*name).to_owned())
                    .collect();
                by.sort_by_key(|name| name.to_lowercase());
                if !by.is_empty() {
                    retirement.retired_by.insert(connection.name.to_owned(), by);
                }
            }
        }
        retirement
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(name: &'a str, source_type: &'a str, enabled: bool) -> ConnectionFacts<'a> {
        ConnectionFacts {
            name,
            source_type,
            enabled,
        }
    }

    fn rules() -> Supersession {
        let mut rules = Supersession::new();
        rules.declare("salesforce", &[] as &[&str]);
        rules.declare("successor", &["salesforce"]);
        rules.declare("selfish", &["selfish"]);
        rules
    }

    #[test]
    fn table() {
        // (connections, expected retired → by)
        type Case<'a> = (Vec<ConnectionFacts<'a>>, Vec<(&'a str, Vec<&'a str>)>);
        let cases: Vec<Case<'_>> = vec![
            // No superseding connection: nothing retired.
            (vec![facts("sf", "salesforce", true)], vec![]),
            // An enabled successor retires every salesforce connection, enabled or not.
            (
                vec![
                    facts("sf", "salesforce", true),
                    facts("sf2", "salesforce", false),
                    facts("mgmt", "successor", true),
                ],
                vec![("sf", vec!["mgmt"]), ("sf2", vec!["mgmt"])],
            ),
            // A disabled successor retires nothing.
            (
                vec![
                    facts("sf", "salesforce", true),
                    facts("mgmt", "successor", false),
                ],
                vec![],
            ),
            // Two successors: both named, sorted.
            (
                vec![
                    facts("sf", "salesforce", true),
                    facts("zeta", "successor", true),
                    facts("Alpha", "successor", true),
                ],
                vec![("sf", vec!["Alpha", "zeta"])],
            ),
            // A source type never supersedes itself.
            (
                vec![facts("a", "selfish", true), facts("b", "selfish", true)],
                vec![],
            ),
        ];
        for (connections, expected) in cases {
            let retirement = rules().retirement(&connections);
            let got: Vec<(&str, Vec<&str>)> = retirement
                .retired_by
                .iter()
                .map(|(k, v)| (k.as_str(), v.iter().map(String::as_str).collect()))
                .collect();
            assert_eq!(got, expected, "{connections:?}");
            assert!(retirement.warnings.is_empty());
        }
    }

    #[test]
    fn an_enabled_connection_of_an_unknown_source_type_is_warned_about() {
        let retirement = rules().retirement(&[
            facts("sf", "salesforce", true),
            facts("ghost", "gone", true),
            facts("off", "gone_too", false),
        ]);
        assert!(retirement.retired_by.is_empty());
        assert_eq!(retirement.warnings.len(), 1, "{:?}", retirement.warnings);
        assert!(retirement.warnings[0].contains("`ghost`"));
        assert_eq!(retirement.of("sf"), &[] as &[String]);
    }
}
