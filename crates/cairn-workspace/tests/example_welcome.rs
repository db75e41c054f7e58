//! The example workspace's welcome email, checked and rendered as a send would: for a
//! contact with a name and for one without.

use std::path::PathBuf;

use cairn_content::{AccountData, ContactData, Limits, RenderContext, render};

fn example() -> cairn_workspace::Workspace {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/workspace");
    cairn_workspace::load_dir(&dir).unwrap_or_else(|d| panic!("the example workspace checks: {d:?}"))
}

fn context(name: Option<&str>) -> RenderContext {
    let account = AccountData { id: "acc_1".into(), name: Some("Acme".into()), ..AccountData::default() };
    let contact = ContactData {
        id: "c_1".into(),
        email: "ada@acme.test".into(),
        name: name.map(str::to_owned),
        ..ContactData::default()
    };
    let now = "2026-03-02T09:00:00Z".parse().unwrap_or_else(|e| panic!("{e}"));
    RenderContext::new(account, contact, now)
        .link("unsubscribe_url", "https://cairn.test/u")
        .link("preferences_url", "https://cairn.test/p")
}

#[test]
fn the_welcome_email_greets_a_contact_without_a_name_as_there() {
    let ws = example();
    let welcome = ws.parsed_template("welcome_email").expect("the example has a welcome email");
    let message = render(welcome, &context(None), &Limits::default()).unwrap_or_else(|e| panic!("renders: {e}"));
    assert_eq!(message.subject, "Welcome to Acme Analytics, there");
    assert!(message.html.starts_with("<h1>Welcome, there!</h1>"), "{}", message.html);
    assert!(message.text.starts_with("Welcome, there!"), "{}", message.text);

    let named = render(welcome, &context(Some("Ada Lovelace")), &Limits::default()).expect("renders");
    assert_eq!(named.subject, "Welcome to Acme Analytics, Ada Lovelace");
    assert!(named.text.starts_with("Welcome, Ada Lovelace!"), "{}", named.text);
}
