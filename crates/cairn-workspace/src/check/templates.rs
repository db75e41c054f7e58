//! Message templates as declared: channel and parts, each inline or a file of the folder
//! (resolved inside it). Their Liquid is checked in `content.rs`.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use super::content::TemplateDecl;
use super::*;
use super::{At, Checker, list};
use crate::programs::{Channel, Template, TemplateText, TextOrigin};
use crate::suggest::did_you_mean;
use crate::yaml::{Node, Value};

const TEMPLATE_KEYS: &[&str] = &["channel", "subject", "preheader", "html", "text"];
const CONTENT_KEYS: &[&str] = &["file"];

impl Checker<'_> {
    pub(super) fn templates(
        &mut self,
        file: usize,
        node: &Node,
        seen: &mut BTreeMap<String, At>,
        assets: &BTreeMap<String, (String, String)>,
    ) -> Vec<TemplateDecl> {
        let mut out = Vec::new();
        let Value::Map(entries) = &node.value else {
            if node.value != Value::Null {
                let message = format!(
                    "expected a mapping of template ids to templates for `templates`, found {}",
                    node.value.kind()
                );
                let help = Some("e.g. `templates: { welcome: { channel: email, subject: ..., html: ... } }`".into());
                self.error(At { file, offset: node.offset }, message, help);
            }
            return out;
        };
        for (key, value) in entries {
            let key_at = At { file, offset: key.offset };
            let id = self.id(file, Some(key));
            let id = match id {
                Some(id)
                    if self.claim(
                        seen,
                        "template",
                        &id,
                        key_at,
                        "template ids are unique across the workspace's files",
                    ) =>
                {
                    id
                }
                _ => continue,
            };
            let what = format!("template `{id}`");
            let Some(fields) = self.fields(file, value, &what, TEMPLATE_KEYS) else { continue };
            let channel_node = self.require(
                &fields,
                "channel",
                &what,
                Some("`channel: email`, `in_app`, `sms`, `slack` or `webhook`"),
            );
            let Some(channel) = channel_node.and_then(|n| self.channel(file, n)) else { continue };
            let part = |cx: &mut Self, key: &str| -> Option<TemplateText> {
                let n = fields.get(key)?;
                cx.template_text(file, n, key, assets)
            };
            let subject = part(self, "subject");
            let preheader = part(self, "preheader");
            let html = part(self, "html");
            let text = part(self, "text");
            let (allowed, required_body): (&[&str], &str) = match channel {
                Channel::Email => (&["subject", "preheader", "html", "text"], "`html` or `text`"),
                Channel::InApp => (&["subject", "html", "text"], "`text` or `html`"),
                Channel::Sms | Channel::Slack | Channel::Webhook => (&["text"], "`text`"),
            };
            for key in ["subject", "preheader", "html"] {
                if let Some(n) = fields.get(key)
                    && !allowed.contains(&key)
                {
                    let a = channel_article(channel);
                    let help = Some(format!("{a} {channel} template has {}", list(allowed)));
                    self.error(
                        At { file, offset: n.offset },
                        format!("`{key}` does not apply to {a} {channel} template"),
                        help,
                    );
                }
            }
            if channel == Channel::Email && fields.get("subject").is_none() {
                self.error(
                    fields.at,
                    format!("missing key `subject` in {what}"),
                    Some("an email needs a subject".into()),
                );
            }
            if fields.get("html").is_none() && fields.get("text").is_none() {
                let body = if allowed.contains(&"html") { required_body.to_string() } else { "`text`".to_string() };
                self.error(fields.at, format!("{what} has no body: add {body}"), None);
            }
            let inline = ["subject", "preheader", "html", "text"]
                .into_iter()
                .filter_map(|key| {
                    let n = fields.get(key).filter(|n| matches!(n.value, Value::Str(_)))?;
                    Some((key, At { file, offset: n.offset }))
                })
                .collect();
            let template = Template { id, channel, subject, preheader, html, text, location: self.location(key_at) };
            out.push(TemplateDecl { template, inline });
        }
        out
    }

    /// A template part: inline text, or `{ file: path }` naming a file of the folder.
    pub(super) fn template_text(
        &mut self,
        file: usize,
        node: &Node,
        key: &str,
        assets: &BTreeMap<String, (String, String)>,
    ) -> Option<TemplateText> {
        let at = At { file, offset: node.offset };
        match &node.value {
            Value::Str(s) => {
                // A quoted scalar starts at its quote; a block scalar at its first content
                // character, alone on its line after the indentation.
                let text = self.files[file].text;
                let line_start = text.get(..node.offset).and_then(|t| t.rfind('\n')).map_or(0, |i| i + 1);
                let starts_line = text.get(line_start..node.offset).is_some_and(|t| t.trim().is_empty());
                let quoted = !starts_line && text.get(node.offset..).is_some_and(|t| t.starts_with(['\'', '"']));
                Some(TemplateText {
                    text: s.clone(),
                    origin: TextOrigin::Inline { location: self.location(at), quoted },
                })
            }
            Value::Map(_) => {
                let fields = self.fields(file, node, &format!("`{key}`"), CONTENT_KEYS)?;
                let path_node =
                    self.require(&fields, "file", &format!("`{key}`"), Some("e.g. `file: templates/welcome.html`"))?;
                let path_at = At { file, offset: path_node.offset };
                let path = self.text(file, path_node, "file")?;
                let relative = Path::new(&path);
                if path.is_empty()
                    || relative.is_absolute()
                    || relative.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
                {
                    let help =
                        Some("write a path relative to the workspace folder, e.g. `templates/welcome.html`".into());
                    self.error(path_at, format!("`{path}` is outside the workspace folder"), help);
                    return None;
                }
                let folder = Path::new(self.files[file].name).parent().unwrap_or(Path::new(""));
                let wanted = folder.join(relative);
                let found = assets.iter().find(|(name, _)| Path::new(name.as_str()) == wanted);
                match found {
                    Some((name, (text, _))) => Some(TemplateText {
                        text: text.clone(),
                        origin: TextOrigin::File { path, file: name.clone(), location: self.location(path_at) },
                    }),
                    None => {
                        if let Some((r, named)) =
                            self.refused.iter_mut().find(|(r, _)| Path::new(r.name.as_str()) == wanted)
                        {
                            *named = true;
                            let (message, help) = (format!("`{path}`: {}", r.message), Some(r.help.clone()));
                            self.error(path_at, message, help);
                            return None;
                        }
                        let names: Vec<&str> = assets.values().map(|(_, rel)| rel.as_str()).collect();
                        let rel_wanted = relative.to_string_lossy().to_string();
                        let help = did_you_mean(&rel_wanted, names.iter().copied())
                            .map(|s| format!("did you mean `{s}`?"))
                            .or_else(|| {
                                Some("template files live in the workspace folder's `templates/` folder".into())
                            });
                        self.error(path_at, format!("template file `{path}` not found"), help);
                        None
                    }
                }
            }
            other => {
                let help = Some(format!("write the text, or `{key}: {{ file: templates/x.html }}`"));
                self.error(at, format!("expected text for `{key}`, found {}", other.kind()), help);
                None
            }
        }
    }
}
