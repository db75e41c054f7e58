//! `cairn user add|list|disable`, run as the binary.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

fn cairn(db: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .args(["--db", db])
        .env_remove("CAIRN_DB")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cairn");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("cairn output")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_first_admin_is_added_from_the_command_line_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cairn.db").display());
    let add = |email: &str, role: &str, pw: &str| {
        cairn(&db, &["user", "add", "--email", email, "--role", role, "--password-stdin"], pw)
    };
    let ok = add("Ana@Example.com", "admin", "correct horse battery\n");
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(stderr(&ok).contains("added Ana@Example.com (admin)"), "{}", stderr(&ok));

    for (email, role, pw, expected) in [
        (
            "ana@example.com",
            "viewer",
            "another good password",
            "there is a user with the address `ana@example.com` already",
        ),
        (
            "bob@example.com",
            "admn",
            "another good password",
            "unknown role `admn`: use admin, ops, csm or viewer (did you mean `admin`?)",
        ),
        ("bob@example.com", "csm", "short\n", "the password has 5 characters: use at least 10"),
        ("bob@example.com", "csm", "", "the password is empty"),
        ("not an address", "csm", "another good password", "--email `not an address`"),
    ] {
        let o = add(email, role, pw);
        assert_eq!(o.status.code(), Some(1), "{email} {role}");
        assert!(stderr(&o).contains(expected), "expected `{expected}` in: {}", stderr(&o));
    }
    let no_stdin = cairn(&db, &["user", "add", "--email", "bob@example.com", "--role", "csm"], "");
    assert!(stderr(&no_stdin).contains("--password-stdin"), "{}", stderr(&no_stdin));

    let list = cairn(&db, &["user", "list", "--json"], "");
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    let users = v["users"].as_array().expect("users");
    assert_eq!(users.len(), 1);
    assert_eq!((users[0]["email"].as_str(), users[0]["role"].as_str()), (Some("Ana@Example.com"), Some("admin")));
    assert!(users[0]["disabled_at"].is_null());
    assert!(!String::from_utf8_lossy(&list.stdout).contains("argon2"), "no hash is ever listed");

    let off = cairn(&db, &["user", "disable", "--email", "ANA@example.com"], "");
    assert!(off.status.success(), "{}", stderr(&off));
    let again = cairn(&db, &["user", "disable", "--email", "ana@example.com"], "");
    assert!(stderr(&again).contains("disabled already"), "{}", stderr(&again));
    let list = cairn(&db, &["user", "list", "--json"], "");
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    assert!(v["users"][0]["disabled_at"].is_string());
}
