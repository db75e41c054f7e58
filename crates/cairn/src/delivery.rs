//! `cairn serve`'s delivery settings: where links point, who email is from, SMTP (or the
//! default outbox: nothing leaves the machine), the webhook URLs of the webhook, SMS and
//! Slack channels, and this node's name for step leases.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cairn_channels::{EmailTransport, SmtpCredentials, SmtpSecurity, SmtpSettings};
use cairn_core::Email;
use cairn_programs::RunnerConfig;
use cairn_workspace::Channel;
use clap::Args;

/// The sender of program email unless `--mail-from` says otherwise.
pub const DEFAULT_MAIL_FROM: &str = "Customer Success <cs@cairn.localhost>";
/// `--step-lease-secs` unless given.
pub const DEFAULT_STEP_LEASE_SECS: u32 = 120;
/// `--step-batch` unless given.
pub const DEFAULT_STEP_BATCH: u32 = 200;

/// Delivery options of `cairn serve`.
#[derive(Args, Debug, Clone)]
pub struct DeliveryArgs {
    /// Base URL of this server as recipients reach it (tracking, unsubscribe and survey
    /// links): e.g. https://cs.example.com. Default: http://LISTEN
    #[arg(long, env = "CAIRN_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Sender of program email, `Name <address>` or an address
    #[arg(long, env = "CAIRN_MAIL_FROM", default_value = DEFAULT_MAIL_FROM)]
    pub mail_from: String,
    /// SMTP server for program email: smtp://[USER:PASSWORD@]HOST[:PORT][?security=starttls|tls|none].
    /// Without it, email goes to the outbox table and nothing leaves the machine
    #[arg(long, env = "CAIRN_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// URL the `webhook` channel POSTs to (signed with CAIRN_WEBHOOK_SECRET)
    #[arg(long, env = "CAIRN_WEBHOOK_URL", hide_env_values = true)]
    pub webhook_url: Option<String>,
    /// URL the `sms` channel POSTs to (your SMS gateway's webhook)
    #[arg(long, env = "CAIRN_SMS_WEBHOOK_URL", hide_env_values = true)]
    pub sms_webhook_url: Option<String>,
    /// URL the `slack` channel POSTs to (your Slack relay)
    #[arg(long, env = "CAIRN_SLACK_WEBHOOK_URL", hide_env_values = true)]
    pub slack_webhook_url: Option<String>,
    /// Secret that signs webhook bodies (X-Cairn-Signature)
    #[arg(long, env = "CAIRN_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// This node's name in step leases (several nodes may share one PostgreSQL).
    /// Default: host name and process id
    #[arg(long, env = "CAIRN_NODE")]
    pub node: Option<String>,
    /// How long a claimed program step is this node's before another node may take it
    /// over (seconds; longer than a batch takes to deliver)
    #[arg(long, env = "CAIRN_STEP_LEASE_SECS", default_value_t = DEFAULT_STEP_LEASE_SECS)]
    pub step_lease_secs: u32,
    /// Program steps claimed at a time
    #[arg(long, env = "CAIRN_STEP_BATCH", default_value_t = DEFAULT_STEP_BATCH)]
    pub step_batch: u32,
}

impl Default for DeliveryArgs {
    /// What `cairn serve` uses without delivery flags: email to the outbox, links to the
    /// listening address.
    fn default() -> DeliveryArgs {
        DeliveryArgs {
            public_url: None,
            mail_from: DEFAULT_MAIL_FROM.to_string(),
            smtp_url: None,
            webhook_url: None,
            sms_webhook_url: None,
            slack_webhook_url: None,
            webhook_secret: None,
            node: None,
            step_lease_secs: DEFAULT_STEP_LEASE_SECS,
            step_batch: DEFAULT_STEP_BATCH,
        }
    }
}

impl DeliveryArgs {
    /// The runner's configuration; `listen` is the address the server is bound to.
    pub fn runner_config(&self, listen: &str) -> Result<RunnerConfig> {
        let node = match &self.node {
            Some(n) => n.clone(),
            None => {
                let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
                format!("{}-{}", if host.is_empty() { "cairn" } else { &host }, std::process::id())
            }
        };
        let mut config = RunnerConfig::new(node);
        if self.step_lease_secs == 0 || self.step_batch == 0 {
            bail!("--step-lease-secs and --step-batch must be at least 1");
        }
        config.lease = jiff::SignedDuration::from_secs(i64::from(self.step_lease_secs));
        config.batch = self.step_batch;
        config.public_url = match &self.public_url {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                url.trim_end_matches('/').to_string()
            }
            Some(url) => bail!("--public-url `{url}` must start with http:// or https://"),
            None => format!("http://{listen}"),
        };
        let (name, address) = parse_mailbox(&self.mail_from)?;
        config.from = Email::parse(&address).map_err(|e| anyhow::anyhow!("--mail-from `{}`: {e}", self.mail_from))?;
        config.from_name = name;
        config.message_id_domain = address.rsplit('@').next().unwrap_or("cairn.localhost").to_string();
        if let Some(url) = &self.smtp_url {
            config.email = EmailTransport::Smtp(parse_smtp_url(url)?);
        }
        let mut hooks = BTreeMap::new();
        for (channel, url) in [
            (Channel::Webhook, &self.webhook_url),
            (Channel::Sms, &self.sms_webhook_url),
            (Channel::Slack, &self.slack_webhook_url),
        ] {
            if let Some(url) = url {
                hooks.insert(channel, url.clone());
            }
        }
        config.webhooks = hooks;
        config.webhook_secret = self.webhook_secret.clone().unwrap_or_default().into_bytes();
        Ok(config)
    }
}

/// `Name <address>` or a bare address.
fn parse_mailbox(text: &str) -> Result<(Option<String>, String)> {
    let text = text.trim();
    let bracketed = text.strip_suffix('>').and_then(|rest| rest.rsplit_once('<'));
    match (bracketed, text.contains('<') || text.ends_with('>')) {
        (Some((name, address)), _) => {
            let name = name.trim().trim_matches('"').trim();
            Ok(((!name.is_empty()).then(|| name.to_string()), address.trim().to_string()))
        }
        (None, false) => Ok((None, text.to_string())),
        (None, true) => bail!("--mail-from `{text}`: write `Name <address>` or an address"),
    }
}

/// `smtp://[user:password@]host[:port][?security=starttls|tls|none]`.
pub fn parse_smtp_url(url: &str) -> Result<SmtpSettings> {
    let rest = url
        .strip_prefix("smtp://")
        .with_context(|| format!("--smtp-url must start with smtp:// (got `{}`)", redact(url)))?;
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (login, hostport) = match rest.rsplit_once('@') {
        Some((l, h)) => (Some(l), h),
        None => (None, rest),
    };
    let mut security = SmtpSecurity::StartTls;
    for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("security", "starttls")) => security = SmtpSecurity::StartTls,
            Some(("security", "tls")) => security = SmtpSecurity::Tls,
            Some(("security", "none")) => security = SmtpSecurity::None,
            _ => bail!("--smtp-url: unknown option `{pair}`: use security=starttls, security=tls or security=none"),
        }
    }
    let default_port = match security {
        SmtpSecurity::Tls => 465,
        SmtpSecurity::StartTls => 587,
        SmtpSecurity::None => 25,
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().with_context(|| format!("--smtp-url: port `{p}` is not a number"))?),
        None => (hostport, default_port),
    };
    if host.is_empty() {
        bail!("--smtp-url `{}` names no host", redact(url));
    }
    let mut settings = SmtpSettings::new(host, port);
    settings.security = security;
    settings.timeout = Duration::from_secs(30);
    if let Some(login) = login {
        let (user, password) = login.split_once(':').unwrap_or((login, ""));
        settings.credentials = Some(SmtpCredentials::new(percent_decode(user), percent_decode(password)));
    }
    Ok(settings)
}

/// A URL's user or password as written before percent-encoding (`%40` for `@`); invalid
/// UTF-8 after decoding becomes U+FFFD.
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    match rest.rsplit_once('@') {
        Some((login, host)) => {
            let user = login.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_give_host_port_security_and_login() {
        let s = parse_smtp_url("smtp://ada:p%40ss@mail.example.com?security=tls").unwrap();
        assert_eq!((s.host.as_str(), s.port, s.security), ("mail.example.com", 465, SmtpSecurity::Tls));
        assert_eq!(s.credentials.unwrap().username, "ada");
        let s = parse_smtp_url("smtp://127.0.0.1:2525?security=none").unwrap();
        assert_eq!((s.port, s.security, s.credentials.is_none()), (2525, SmtpSecurity::None, true));
        assert_eq!(parse_smtp_url("smtp://relay").unwrap().port, 587);
    }

    #[test]
    fn logins_are_percent_decoded_to_the_last_character() {
        // The hand-written decoder this replaced left an escape at the very end as written.
        let s = parse_smtp_url("smtp://ada%40corp:x@mail.example.com").unwrap();
        assert_eq!(s.credentials.unwrap().username, "ada@corp");
        assert_eq!(percent_decode("p%40ss%21"), "p@ss!");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%e9"), "%zz\u{FFFD}");
    }

    #[test]
    fn bad_smtp_urls_say_what_is_wrong_without_the_password() {
        let e = parse_smtp_url("http://ada:secret@mail").unwrap_err().to_string();
        assert!(e.contains("must start with smtp://") && !e.contains("secret"), "{e}");
        let e = parse_smtp_url("smtp://mail:port").unwrap_err().to_string();
        assert!(e.contains("port `port` is not a number"), "{e}");
        let e = parse_smtp_url("smtp://mail?tls=yes").unwrap_err().to_string();
        assert!(e.contains("unknown option `tls=yes`"), "{e}");
    }

    #[test]
    fn senders_are_a_name_and_an_address_or_an_address() {
        assert_eq!(
            parse_mailbox("Acme CS <cs@acme.example>").unwrap(),
            (Some("Acme CS".into()), "cs@acme.example".into())
        );
        assert_eq!(parse_mailbox("cs@acme.example").unwrap(), (None, "cs@acme.example".into()));
        assert!(parse_mailbox("Acme <cs@acme.example").is_err());
    }
}
