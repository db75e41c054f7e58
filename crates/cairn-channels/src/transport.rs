//! Where a built email goes: the local outbox (default) or an SMTP server.

use std::fmt;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::email::BuiltEmail;
use crate::error::ChannelError;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmtpSecurity {
    /// Plain text. Only for a relay on the same machine or a test sink: messages travel
    /// in clear, and credentials are refused unless the host is a loopback address.
    None,
    /// Plain connection upgraded with STARTTLS, which is required (usually port 587).
    #[default]
    StartTls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// SMTP login. `Debug` shows the user name, never the password.
#[derive(Clone)]
pub struct SmtpCredentials {
    /// The user name.
    pub username: String,
    password: String,
}

impl SmtpCredentials {
    /// A user name and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> SmtpCredentials {
        SmtpCredentials { username: username.into(), password: password.into() }
    }
}

impl fmt::Debug for SmtpCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpCredentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// Where and how to reach the SMTP server.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// Host name (checked against its certificate) or address.
    pub host: String,
    /// Port: 587 for STARTTLS, 465 for TLS, 25 between servers.
    pub port: u16,
    /// Transport security.
    pub security: SmtpSecurity,
    /// Login, when the server wants one.
    pub credentials: Option<SmtpCredentials>,
    /// Limit on each network step; past it the attempt is transient.
    pub timeout: Duration,
    /// The name cairn gives in `EHLO`, usually the sending domain (`localhost` if unset).
    pub hello_name: Option<String>,
}

impl SmtpSettings {
    /// Settings for `host:port` with STARTTLS, no login and a 30-second timeout.
    pub fn new(host: impl Into<String>, port: u16) -> SmtpSettings {
        SmtpSettings {
            host: host.into(),
            port,
            security: SmtpSecurity::StartTls,
            credentials: None,
            timeout: Duration::from_secs(30),
            hello_name: None,
        }
    }
}

/// Where email goes. The default is the outbox: nothing leaves the machine unless SMTP is
/// configured.
#[derive(Debug, Clone, Default)]
pub enum EmailTransport {
    /// Hand the raw message back to the caller, who stores it (a file or a table).
    #[default]
    Outbox,
    /// Send through an SMTP server.
    Smtp(SmtpSettings),
}

/// What happened to a message that was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Kept in the outbox: here is the message as it would have gone on the wire.
    Outbox {
        /// The RFC 5322 message.
        raw: Vec<u8>,
    },
    /// Accepted by the SMTP server.
    Smtp {
        /// The server's reply code (250).
        code: u16,
        /// The server's reply text, often carrying its queue id.
        reply: String,
    },
}

/// A ready transport, built once from [`EmailTransport`] and used for every send.
#[derive(Clone)]
pub struct Mailer {
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.smtp.is_some() { "Mailer::Smtp" } else { "Mailer::Outbox" })
    }
}

impl Mailer {
    /// Prepares the transport (TLS settings with the bundled web PKI roots and the `ring`
    /// provider); connects nowhere yet.
    pub fn new(transport: &EmailTransport) -> Result<Mailer, ChannelError> {
        let EmailTransport::Smtp(settings) = transport else {
            return Ok(Mailer { smtp: None });
        };
        if settings.host.is_empty() || settings.host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ChannelError::Config(format!("`{}` is not an SMTP host", settings.host)));
        }
        let tls_parameters = || {
            TlsParameters::new(settings.host.clone())
                .map_err(|e| ChannelError::Config(format!("TLS for `{}`: {e}", settings.host)))
        };
        if settings.security == SmtpSecurity::None && settings.credentials.is_some() && !is_loopback(&settings.host) {
            return Err(ChannelError::Config(format!(
                "refusing to send SMTP credentials in clear to `{}`: use StartTls or Tls",
                settings.host
            )));
        }
        let tls = match settings.security {
            SmtpSecurity::None => Tls::None,
            SmtpSecurity::StartTls => Tls::Required(tls_parameters()?),
            SmtpSecurity::Tls => Tls::Wrapper(tls_parameters()?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.clone())
            .port(settings.port)
            .tls(tls)
            .timeout(Some(settings.timeout));
        if let Some(name) = &settings.hello_name {
            builder = builder.hello_name(ClientId::Domain(name.clone()));
        }
        if let Some(credentials) = &settings.credentials {
            builder = builder.credentials(Credentials::new(credentials.username.clone(), credentials.password.clone()));
        }
        Ok(Mailer { smtp: Some(builder.build()) })
    }

    /// True when messages really leave the machine.
    pub fn is_smtp(&self) -> bool {
        self.smtp.is_some()
    }

    /// Delivers one message: returns it raw for the outbox, or sends it over one SMTP
    /// connection. A failure says whether to retry ([`ChannelError::is_transient`]).
    pub async fn send(&self, email: &BuiltEmail) -> Result<Delivery, ChannelError> {
        let raw = email.raw();
        let Some(smtp) = &self.smtp else {
            return Ok(Delivery::Outbox { raw });
        };
        match smtp.send_raw(email.message.envelope(), &raw).await {
            Ok(response) => Ok(Delivery::Smtp {
                code: u16::from(response.code()),
                reply: response.message().collect::<Vec<_>>().join(" "),
            }),
            Err(error) => Err(classify(&error)),
        }
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// SMTP replies that are about our login rather than the message: a rotated password
/// should delay mail, not dead-letter all of it.
const AUTH_CODES: [u16; 4] = [530, 534, 535, 538];

fn classify(error: &lettre::transport::smtp::Error) -> ChannelError {
    let code = error.status().map(u16::from);
    let detail = error.to_string();
    match code {
        Some(c) if (500..600).contains(&c) && !AUTH_CODES.contains(&c) => ChannelError::Permanent { code, detail },
        Some(_) => ChannelError::Transient { code, detail },
        // A message the server never saw because we could not build its envelope.
        None if error.is_client() => ChannelError::Permanent { code, detail },
        // Connection refused or reset, timeouts, TLS failures, garbled replies.
        None => ChannelError::Transient { code, detail },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_mailers_hide_the_password() {
        let mut settings = SmtpSettings::new("smtp.example.com", 587);
        settings.credentials = Some(SmtpCredentials::new("cairn", "hunter2-very-secret"));
        let text = format!("{:?} {:?}", settings, EmailTransport::Smtp(settings.clone()));
        assert!(!text.contains("hunter2"), "{text}");
        let mailer = Mailer::new(&EmailTransport::Smtp(settings)).unwrap();
        assert!(!format!("{mailer:?}").contains("hunter2"));
        assert!(mailer.is_smtp());
    }

    #[test]
    fn credentials_never_travel_in_clear_beyond_this_machine() {
        let mut settings = SmtpSettings::new("smtp.example.com", 25);
        settings.security = SmtpSecurity::None;
        assert!(Mailer::new(&EmailTransport::Smtp(settings.clone())).is_ok(), "no login: allowed (port 25 relay)");
        settings.credentials = Some(SmtpCredentials::new("cairn", "pw"));
        let err = Mailer::new(&EmailTransport::Smtp(settings.clone())).unwrap_err();
        assert!(matches!(err, ChannelError::Config(_)), "{err:?}");
        for host in ["localhost", "127.0.0.1", "::1", "[::1]"] {
            settings.host = host.into();
            assert!(Mailer::new(&EmailTransport::Smtp(settings.clone())).is_ok(), "{host}");
        }
    }

    #[test]
    fn the_default_transport_is_the_outbox() {
        let mailer = Mailer::new(&EmailTransport::default()).unwrap();
        assert!(!mailer.is_smtp());
    }

    #[test]
    fn a_host_that_is_not_a_name_is_a_configuration_error() {
        for host in ["", "smtp example", "smtp\r\n.example"] {
            let err = Mailer::new(&EmailTransport::Smtp(SmtpSettings::new(host, 25))).unwrap_err();
            assert!(matches!(err, ChannelError::Config(_)), "{host:?}: {err:?}");
        }
    }
}
