//! Pools: the teams pooled tasks go to (`pools: { digital: { name, members } }`).

use std::collections::BTreeMap;

use cairn_core::Email;

use super::{At, Checker};
use crate::programs::Pool;
use crate::yaml::{Node, Value};

const POOL_KEYS: &[&str] = &["name", "members"];
const POOL_EXAMPLE: &str = "e.g. `pools: { digital: { name: Digital CS team, members: [ana@acme.example] } }`";
const MEMBERS_EXAMPLE: &str = "e.g. `members: [ana@acme.example, bo@acme.example]`";

impl Checker<'_> {
    /// The pools of a `pools:` section. Every valid pool id is claimed in `seen` even when
    /// the pool itself is malformed, so task steps naming it report nothing more.
    pub(super) fn pools(&mut self, file: usize, node: &Node, seen: &mut BTreeMap<String, At>) -> Vec<Pool> {
        let mut out = Vec::new();
        let Value::Map(entries) = &node.value else {
            if node.value != Value::Null {
                let message =
                    format!("expected a mapping of pool ids to pools for `pools`, found {}", node.value.kind());
                self.error(At { file, offset: node.offset }, message, Some(POOL_EXAMPLE.into()));
            }
            return out;
        };
        for (key, value) in entries {
            let key_at = At { file, offset: key.offset };
            let Some(id) = self.id(file, Some(key)) else { continue };
            if !self.claim(seen, "pool", &id, key_at, "pool ids are unique across the workspace's files") {
                continue;
            }
            let what = format!("pool `{id}`");
            let Some(fields) = self.fields(file, value, &what, POOL_KEYS) else { continue };
            let name = self.label(file, fields.get("name"), "name");
            let members_node = self.require(&fields, "members", &what, Some(MEMBERS_EXAMPLE));
            let Some(members) = members_node.and_then(|n| self.members(file, n, &what)) else { continue };
            out.push(Pool { id, name, members, location: self.location(key_at) });
        }
        out
    }

    /// A pool's members: a non-empty list of distinct email addresses, lowercased.
    fn members(&mut self, file: usize, node: &Node, what: &str) -> Option<Vec<String>> {
        let at = At { file, offset: node.offset };
        let items = match &node.value {
            Value::Seq(items) => items.as_slice(),
            Value::Null => &[],
            other => {
                let message = format!("expected a list of email addresses for `members`, found {}", other.kind());
                self.error(at, message, Some(MEMBERS_EXAMPLE.into()));
                return None;
            }
        };
        if items.is_empty() {
            self.error(
                at,
                format!("{what} has no members"),
                Some(format!("list who takes its tasks, {MEMBERS_EXAMPLE}")),
            );
            return None;
        }
        let mut members = Some(Vec::new());
        let mut first: BTreeMap<String, At> = BTreeMap::new();
        for item in items {
            let item_at = At { file, offset: item.offset };
            let Value::Str(raw) = &item.value else {
                let message = format!("expected an email address in `members`, found {}", item.value.kind());
                self.error(item_at, message, Some(MEMBERS_EXAMPLE.into()));
                members = None;
                continue;
            };
            let email = match Email::parse(raw) {
                Ok(email) => email,
                Err(e) => {
                    self.error(item_at, e.to_string(), Some(MEMBERS_EXAMPLE.into()));
                    members = None;
                    continue;
                }
            };
            if let Some(previous) = first.get(email.as_str()) {
                let help = Some(format!("it is first listed at {}; keep one", self.place(*previous)));
                self.error(item_at, format!("`{}` is listed twice in {what}", email.as_str()), help);
                members = None;
                continue;
            }
            first.insert(email.as_str().to_owned(), item_at);
            if let Some(list) = &mut members {
                list.push(email.as_str().to_owned());
            }
        }
        members
    }
}
