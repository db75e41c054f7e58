//! The store's behavioural conformance suite: every scenario runs on SQLite (a fresh
//! temporary file) and on PostgreSQL (a fresh schema at `CAIRN_TEST_PG`, default
//! `postgres://postgres@127.0.0.1:5432/test`; `CAIRN_TEST_PG=skip` skips those).
//!
//! A scenario is an `async fn name(store: Store)` listed in `on_both_backends!`, which
//! generates `sqlite::name` and `postgres::name` tests; a `two_nodes` scenario gets two
//! stores on one database, as two cairn nodes would have.

mod common;

use std::collections::HashMap;

use cairn_core::doctor::{DoctorReport, Finding, SourceFreshness, Totals, Unmatched};
use cairn_core::import::RowError;
use cairn_core::{Money, Source};
use cairn_store::{Appended, Appender, ImportRun, KeyKind, Store};
use common::*;
use serde_json::{Value, json};

macro_rules! on_both_backends {
    (async: [$($scenario:ident),* $(,)?], two_nodes: [$($two:ident),* $(,)?], blocking: [$($blocking:ident),* $(,)?] $(,)?) => {
        on_both_backends!(@backend sqlite, Sqlite, [$($scenario),*], [$($two),*], [$($blocking),*]);
        on_both_backends!(@backend postgres, Postgres, [$($scenario),*], [$($two),*], [$($blocking),*]);
    };
    (@backend $module:ident, $backend:ident, [$($scenario:ident),*], [$($two:ident),*], [$($blocking:ident),*]) => {
        mod $module {
            use crate::common::{run, run_blocking, run_two, Backend};
            $(
                #[tokio::test]
                async fn $scenario() {
                    run(Backend::$backend, stringify!($scenario), super::$scenario).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $two() {
                    run_two(Backend::$backend, stringify!($two), super::$two).await;
                }
            )*
            $(
                #[test]
                fn $blocking() {
                    run_blocking(Backend::$backend, stringify!($blocking), super::$blocking);
                }
            )*
        }
    };
}

on_both_backends! {
    async: [
        // Accounts import
        importing_the_same_accounts_twice_changes_nothing,
        a_changed_account_row_updates_the_account,
        an_empty_cell_clears_a_column_and_an_absent_column_keeps_it,
        // Contacts import
        contacts_are_linked_to_accounts_by_account_external_id,
        an_unknown_account_external_id_is_a_row_error_naming_the_column,
        a_contact_is_linked_by_email_domain_when_exactly_one_account_lists_it,
        a_domain_listed_by_two_accounts_links_nobody,
        importing_accounts_with_domains_later_links_waiting_contacts,
        // Subscriptions
        arr_on_a_day_sums_the_lines_active_that_day_with_both_ends_inclusive,
        a_subscription_line_for_an_unknown_account_is_a_row_error,
        // Tracking
        a_message_id_is_stored_once_however_often_it_is_sent,
        duplicates_inside_one_call_are_detected,
        a_message_id_is_unique_per_source_not_across_sources,
        a_bulk_import_deduplicates_per_source,
        last_seq_grows_with_every_new_event_and_only_then,
        a_large_batch_is_stored_once_with_its_properties_intact,
        concurrent_requests_through_the_appender_are_all_committed,
        // Identity
        identify_creates_a_contact_and_matches_earlier_anonymous_events,
        a_group_call_creates_the_account_and_links_the_contact,
        a_track_with_context_group_id_is_bound_to_the_account,
        identify_with_the_email_of_a_crm_contact_attaches_the_product_id,
        alias_links_the_previous_id_to_the_contact,
        // Doctor
        doctor_reports_exact_numbers_for_a_small_dataset,
        doctor_on_an_empty_store_is_clean,
        // API keys and import runs
        an_api_key_is_found_by_its_hash,
        an_unknown_api_key_hash_finds_nothing,
        an_import_run_can_be_recorded,
        // What the engine reads and keeps
        events_after_resolves_identity_now_even_for_events_stored_before_it_was_known,
        event_times_and_events_by_seq_give_back_the_log_in_time_order,
        engine_accounts_have_arr_on_the_day_and_custom_traits,
        an_account_is_resolved_from_the_id_a_user_types,
        transitions_are_stored_once_by_key_and_read_back_in_order,
        segment_members_before_an_instant_are_rebuilt_from_entries_and_exits,
        events_named_are_read_with_their_account_oldest_first,
        journey_transitions_and_survey_answers_are_read_for_the_reports,
        health_overrides_keep_an_audit_trail,
        the_last_recorded_definitions_hash_is_known,
        change_counters_move_after_the_right_commits_and_not_after_reads,
        the_report_counter_moves_after_every_write_a_report_reads,
        an_append_waits_for_an_open_import_so_events_become_visible_in_seq_order,
        // Health snapshots (migration 0007)
        health_snapshots_are_written_once_and_a_changed_day_replaces_its_row,
        health_snapshots_are_read_as_runs_over_a_range_and_on_given_days,
        // Programs
        enrolling_again_with_the_same_trigger_key_enrolls_once,
        a_claimed_step_is_leased_until_its_lease_expires_and_then_claimed_again,
        ending_an_enrollment_cancels_its_pending_steps,
        a_step_is_recorded_once_when_two_owners_race_after_a_lease_expiry,
        an_outbox_send_is_stored_exactly_once,
        a_transient_failure_is_retried_with_the_attempt_counted,
        a_permanent_failure_ends_in_the_dead_letters_with_its_reason,
        frequency_caps_count_sends_at_or_after_the_window_start_across_programs,
        consent_keeps_its_history_and_the_latest_change_wins,
        hard_bounced_addresses_are_suppressed_whatever_their_case,
        a_round_reads_consent_suppressions_sends_and_enrollments_for_many_at_once,
        two_records_of_one_enrollment_in_a_batch_are_written_in_order,
        a_contact_reads_and_marks_only_their_own_inapp_messages,
        tasks_are_made_once_per_step_and_listed_by_pool_assignee_and_load,
        // The runner (migration 0004)
        a_recorded_step_schedules_the_next_or_ends_the_enrollment_in_the_same_transaction,
        a_deferred_step_keeps_its_start_and_a_woken_wait_is_due_now,
        engagement_is_recorded_once_per_kind_and_goals_once,
        deferrals_engagement_and_goals_set_wise_agree_with_one_at_a_time,
        settings_are_shared_and_the_first_secret_stored_wins,
        custom_traits_set_by_a_program_are_read_back_and_signal_a_data_change,
        program_activity_reads_a_range_of_enrollments_with_accounts_sends_and_engagements,
    ],
    two_nodes: [
        two_nodes_writing_the_same_health_snapshots_store_them_once,
        two_nodes_claiming_at_once_take_every_due_step_exactly_once,
        two_nodes_completing_the_same_steps_at_once_record_each_once,
    ],
    blocking: [
        import_order_does_not_change_the_snapshot,
    ],
}

// =======================================================================================
// Accounts import

const ACCOUNTS: &str = "
    external_id,name,industry,plan,seats,start_date,renewal_date,domains,billing_id,region
    A1,Acme,Manufacturing,team,25,2026-01-15,2027-01-14,acme.com;acme.io,cus_1,EMEA
    A2,Globex,Energy,business,100,2025-06-01,,globex.com,,AMER
";

async fn importing_the_same_accounts_twice_changes_nothing(store: Store) {
    import_accounts(&store, Source::Crm, ACCOUNTS).await;
    let first = store.snapshot().await.unwrap();
    import_accounts(&store, Source::Crm, ACCOUNTS).await;
    let second = store.snapshot().await.unwrap();
    assert_eq!(first, second, "re-importing the same rows must change nothing");

    assert_eq!(accounts(&second).len(), 2);
    let acme = account(&second, "crm:A1");
    assert_eq!(acme["ids"], json!(["billing:cus_1(import)", "crm:A1(import)"]));
    assert_eq!(acme["name"], "Acme");
    assert_eq!(acme["industry"], "Manufacturing");
    assert_eq!(acme["plan"], "team");
    assert_eq!(acme["seats"], 25);
    assert_eq!(acme["start_date"], "2026-01-15");
    assert_eq!(acme["renewal_date"], "2027-01-14");
    assert_eq!(acme["domains"], json!(["acme.com", "acme.io"]));
    assert_eq!(acme["traits"], json!({ "region": "EMEA" }));
    assert_eq!(account(&second, "crm:A2")["renewal_date"], Value::Null);
}

async fn a_changed_account_row_updates_the_account(store: Store) {
    import_accounts(&store, Source::Crm, ACCOUNTS).await;
    import_accounts(
        &store,
        Source::Crm,
        "
        external_id,name,industry,plan,seats,start_date,renewal_date,domains,billing_id,region
        A1,Acme Corp,Manufacturing,business,40,2026-01-15,2027-01-14,acme.com,cus_1,APAC
        ",
    )
    .await;
    let snap = store.snapshot().await.unwrap();
    assert_eq!(accounts(&snap).len(), 2, "an upsert by external id creates no new account");
    let acme = account(&snap, "crm:A1");
    assert_eq!(acme["name"], "Acme Corp");
    assert_eq!(acme["plan"], "business");
    assert_eq!(acme["seats"], 40);
    assert_eq!(acme["domains"], json!(["acme.com"]));
    assert_eq!(acme["traits"], json!({ "region": "APAC" }));
    assert_eq!(account(&snap, "crm:A2")["plan"], "business", "other accounts are untouched");
}

async fn an_empty_cell_clears_a_column_and_an_absent_column_keeps_it(store: Store) {
    import_accounts(&store, Source::Crm, ACCOUNTS).await;
    // Empty industry, seats, renewal_date, domains and region; no plan or start_date column.
    import_accounts(
        &store,
        Source::Crm,
        "
        external_id,name,industry,seats,renewal_date,domains,region
        A1,Acme,,,,,
        ",
    )
    .await;
    let snap = store.snapshot().await.unwrap();
    let acme = account(&snap, "crm:A1");
    assert_eq!(acme["industry"], Value::Null, "an empty cell clears");
    assert_eq!(acme["seats"], Value::Null);
    assert_eq!(acme["renewal_date"], Value::Null);
    assert_eq!(acme["domains"], json!([]));
    assert_eq!(acme["traits"], json!({}), "an empty custom cell removes the trait");
    assert_eq!(acme["plan"], "team", "an absent column leaves the value");
    assert_eq!(acme["start_date"], "2026-01-15");
    assert_eq!(acme["ids"], json!(["billing:cus_1(import)", "crm:A1(import)"]), "an absent id column keeps the id");
}

// =======================================================================================
// Contacts import

async fn contacts_are_linked_to_accounts_by_account_external_id(store: Store) {
    import_accounts(&store, Source::Crm, ACCOUNTS).await;
    import_contacts(
        &store,
        Source::Crm,
        "
        external_id,account_external_id,email,name,role,timezone,nps
        C1,A1,Ada@Acme.com,Ada Lovelace,Admin,Europe/London,9
        C2,A2,bob@globex.com,Bob,Champion,,
        ",
    )
    .await;
    let snap = store.snapshot().await.unwrap();
    let ada = contact(&snap, "crm:C1");
    assert_eq!(ada["account"], account(&snap, "crm:A1")["ids"]);
    assert_eq!(ada["account_match_basis"], "import");
    assert_eq!(ada["email"], "ada@acme.com");
    assert_eq!(ada["name"], "Ada Lovelace");
    assert_eq!(ada["role"], "admin");
    assert_eq!(ada["timezone"], "Europe/London");
    assert_eq!(ada["traits"], json!({ "nps": 9 }));
    let bob = contact(&snap, "crm:C2");
    assert_eq!(bob["account"], account(&snap, "crm:A2")["ids"]);
    assert_eq!(bob["account_match_basis"], "import");
    assert_eq!(bob["traits"], json!({}));
}

async fn an_unknown_account_external_id_is_a_row_error_naming_the_column(store: Store) {
    import_accounts(&store, Source::Crm, ACCOUNTS).await;
    let rows = contact_rows(
        "
        external_id,account_external_id,email
        C1,A1,ada@acme.com
        C2,A9,bob@nowhere.org
        C3,A2,cy@globex.com
        ",
    );
    let results = store.upsert_contacts(Source::Crm, &rows).await.unwrap();
    assert!(results[0].is_ok() && results[2].is_ok(), "the other rows are applied: {results:?}");
    let error: &RowError = results[1].as_ref().unwrap_err();
    assert_eq!(error.line, 3);
    assert_eq!(error.column.as_deref(), Some("account_external_id"));
    assert!(error.reason.contains("A9"), "the reason names the id: {error}");

    let snap = store.snapshot().await.unwrap();
    assert!(!has_contact(&snap, "crm:C2"), "a rejected row changes nothing");
    assert_eq!(contacts(&snap).len(), 2);
}

async fn a_contact_is_linked_by_email_domain_when_exactly_one_account_lists_it(store: Store) {
    import_accounts(&store, Source::Crm, ACCOUNTS).await;
    import_contacts(
        &store,
        Source::Crm,
        "
        external_id,account_external_id,email
        C1,,ada@acme.com
        C2,,eve@mail.acme.com
        C3,,
        ",
    )
    .await;
    let snap = store.snapshot().await.unwrap();
    let ada = contact(&snap, "crm:C1");
    assert_eq!(ada["account"], account(&snap, "crm:A1")["ids"]);
    assert_eq!(ada["account_match_basis"], "email_domain:acme.com");
    let eve = contact(&snap, "crm:C2");
    assert_eq!(eve["account"], Value::Null, "only an exact domain matches");
    assert_eq!(eve["account_match_basis"], Value::Null);
    assert_eq!(contact(&snap, "crm:C3")["account"], Value::Null);
}

async fn a_domain_listed_by_two_accounts_links_nobody(store: Store) {
    // Contacts that arrive after the accounts…
    import_accounts(
        &store,
        Source::Crm,
        "external_id,name,domains\nA1,Acme,shared.com;acme.com\nA2,Acme Europe,shared.com",
    )
    .await;
    import_contacts(&store, Source::Crm, "external_id,email\nC1,ada@shared.com").await;
    // …and contacts that were waiting before them, whichever account comes first.
    import_contacts(&store, Source::Crm, "external_id,email\nC2,bob@twice.com\nC3,cy@twice.com").await;
    import_accounts(&store, Source::Crm, "external_id,name,domains\nA3,Twice,twice.com\nA4,Twice Again,twice.com")
        .await;

    let snap = store.snapshot().await.unwrap();
    for id in ["crm:C1", "crm:C2", "crm:C3"] {
        let c = contact(&snap, id);
        assert_eq!(c["account"], Value::Null, "{id} must not be linked: {c:#}");
        assert_eq!(c["account_match_basis"], Value::Null);
    }
    let report = store.doctor(today()).await.unwrap();
    assert_eq!(report.unmatched.contacts_without_account, 3);
}

async fn importing_accounts_with_domains_later_links_waiting_contacts(store: Store) {
    import_contacts(
        &store,
        Source::Crm,
        "
        external_id,account_external_id,email
        C1,,ada@acme.com
        C2,,bob@globex.com
        C3,,carl@nowhere.org
        ",
    )
    .await;
    let before = store.doctor(today()).await.unwrap();
    assert_eq!(before.unmatched.contacts_without_account, 3);

    import_accounts(&store, Source::Crm, ACCOUNTS).await;
    let snap = store.snapshot().await.unwrap();
    let ada = contact(&snap, "crm:C1");
    assert_eq!(ada["account"], account(&snap, "crm:A1")["ids"]);
    assert_eq!(ada["account_match_basis"], "email_domain:acme.com");
    let bob = contact(&snap, "crm:C2");
    assert_eq!(bob["account"], account(&snap, "crm:A2")["ids"]);
    assert_eq!(bob["account_match_basis"], "email_domain:globex.com");
    assert_eq!(contact(&snap, "crm:C3")["account"], Value::Null);
    let after = store.doctor(today()).await.unwrap();
    assert_eq!(after.unmatched.contacts_without_account, 1);

    // When Globex stops listing its domain, the link made through it goes too.
    import_accounts(&store, Source::Crm, "external_id,name,domains\nA2,Globex,").await;
    let snap = store.snapshot().await.unwrap();
    assert_eq!(contact(&snap, "crm:C2")["account"], Value::Null);
    assert_eq!(contact(&snap, "crm:C2")["account_match_basis"], Value::Null);
    assert_eq!(contact(&snap, "crm:C1")["account_match_basis"], "email_domain:acme.com", "other links stay");
}

// =======================================================================================
// Subscriptions

async fn arr_on_a_day_sums_the_lines_active_that_day_with_both_ends_inclusive(store: Store) {
    import_accounts(&store, Source::Crm, ACCOUNTS).await;
    import_subscriptions(
        &store,
        Source::Crm,
        "
        id,account_id,start_date,end_date,arr,seats,product
        S1,A1,2026-01-01,2026-06-30,1200,10,Core
        S2,A1,2026-03-01,2026-12-31,600.50,,Add-on
        S3,A2,2026-01-01,2026-12-31,99999,,
        ",
    )
    .await;
    let arr = |day: &'static str| {
        let store = store.clone();
        async move { store.account_arr_on(Source::Crm, "A1", date(day)).await.unwrap() }
    };
    assert_eq!(arr("2025-12-31").await, Some(Money(0)), "before the first line starts");
    assert_eq!(arr("2026-01-01").await, Some(Money(120_000)), "on S1's start");
    assert_eq!(arr("2026-02-28").await, Some(Money(120_000)), "the day before S2 starts");
    assert_eq!(arr("2026-03-01").await, Some(Money(180_050)), "on S2's start");
    assert_eq!(arr("2026-06-30").await, Some(Money(180_050)), "on S1's end");
    assert_eq!(arr("2026-07-01").await, Some(Money(60_050)), "after S1's end");
    assert_eq!(arr("2026-12-31").await, Some(Money(60_050)), "on S2's end");
    assert_eq!(arr("2027-01-01").await, Some(Money(0)), "after every line ended");
    assert_eq!(store.account_arr_on(Source::Crm, "A9", date("2026-03-01")).await.unwrap(), None, "no such account");

    // A line is upserted by id; lines from billing reach the account by its billing id.
    import_subscriptions(
        &store,
        Source::Crm,
        "id,account_id,start_date,end_date,arr\nS1,A1,2026-01-01,2026-06-30,2400",
    )
    .await;
    import_subscriptions(
        &store,
        Source::Billing,
        "id,account_id,start_date,end_date,arr\nsub_1,cus_1,2026-03-01,2026-03-31,100",
    )
    .await;
    assert_eq!(arr("2026-03-01").await, Some(Money(240_000 + 60_050 + 10_000)));
    assert_eq!(
        store.account_arr_on(Source::Billing, "cus_1", date("2026-04-01")).await.unwrap(),
        Some(Money(240_000 + 60_050))
    );

    let snap = store.snapshot().await.unwrap();
    let lines = snap["subscriptions"].as_array().unwrap();
    assert_eq!(lines.len(), 4);
    let s2 = lines.iter().find(|l| l["id"] == "S2").unwrap();
    assert_eq!(s2["account"], account(&snap, "crm:A1")["ids"]);
    assert_eq!(
        (s2["arr_cents"].clone(), s2["product"].clone(), s2["seats"].clone()),
        (json!(60_050), json!("Add-on"), Value::Null)
    );
    assert_eq!(store.doctor(today()).await.unwrap().totals.subscription_lines, 4);
}

async fn a_subscription_line_for_an_unknown_account_is_a_row_error(store: Store) {
    import_accounts(&store, Source::Crm, ACCOUNTS).await;
    let rows = subscription_rows(
        "
        id,account_id,start_date,end_date,arr
        S1,A9,2026-01-01,2026-12-31,100
        S2,A1,2026-01-01,2026-12-31,100
        ",
    );
    let results = store.upsert_subscriptions(Source::Crm, &rows).await.unwrap();
    let error = results[0].as_ref().unwrap_err();
    assert_eq!((error.line, error.column.as_deref()), (2, Some("account_id")));
    assert!(error.reason.contains("A9"), "{error}");
    assert!(results[1].is_ok());
    // The same external id from another source is another account.
    let results = store
        .upsert_subscriptions(
            Source::Billing,
            &subscription_rows("id,account_id,start_date,end_date,arr\nS3,A1,2026-01-01,2026-12-31,100"),
        )
        .await
        .unwrap();
    assert_eq!(results[0].as_ref().unwrap_err().column.as_deref(), Some("account_id"));

    let snap = store.snapshot().await.unwrap();
    let ids: Vec<&Value> = snap["subscriptions"].as_array().unwrap().iter().map(|l| &l["id"]).collect();
    assert_eq!(ids, vec!["S2"]);
}

// =======================================================================================
// Tracking

fn track(message_id: &str, user_id: &str, event: &str) -> cairn_core::tracking::TrackingMessage {
    msg(json!({ "type": "track", "messageId": message_id, "userId": user_id, "event": event }))
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

async fn a_message_id_is_stored_once_however_often_it_is_sent(store: Store) {
    let first = vec![track("m1", "u1", "Report Viewed"), track("m2", "u1", "Report Exported")];
    assert_eq!(store.append("web", &first).await.unwrap(), vec![Appended::New, Appended::New]);
    // A retry of the same request, and a resend with other content: both are duplicates.
    assert_eq!(store.append("web", &first).await.unwrap(), vec![Appended::Duplicate, Appended::Duplicate]);
    assert_eq!(store.append("web", &[track("m1", "u2", "Other")]).await.unwrap(), vec![Appended::Duplicate]);

    let counts = store.count_message_ids(&ids(&["m1", "m2", "m3"])).await.unwrap();
    assert_eq!(counts, HashMap::from([("m1".to_string(), 1), ("m2".to_string(), 1), ("m3".to_string(), 0)]));
    let snap = store.snapshot().await.unwrap();
    assert_eq!(
        snap["events"],
        json!([
            ["m1", "track", "Report Viewed", "u1", null, null, timestamp(RECEIVED_AT).as_millisecond(), "web", null],
            ["m2", "track", "Report Exported", "u1", null, null, timestamp(RECEIVED_AT).as_millisecond(), "web", null],
        ]),
        "the first arrival is what is kept"
    );
    assert_eq!(store.doctor(today()).await.unwrap().totals.events, 2);
}

async fn duplicates_inside_one_call_are_detected(store: Store) {
    let identify = msg(json!({ "type": "identify", "messageId": "i1", "userId": "u1", "traits": { "name": "Ada" } }));
    let batch = vec![
        track("m1", "u1", "A"),
        track("m1", "u1", "A"),
        identify.clone(),
        identify,
        track("m2", "u1", "B"),
        track("m1", "u1", "A"),
    ];
    assert_eq!(
        store.append("web", &batch).await.unwrap(),
        vec![
            Appended::New,
            Appended::Duplicate,
            Appended::New,
            Appended::Duplicate,
            Appended::New,
            Appended::Duplicate
        ]
    );
    let counts = store.count_message_ids(&ids(&["m1", "m2", "i1"])).await.unwrap();
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    assert_eq!(store.doctor(today()).await.unwrap().totals.events, 3);

    // Across the groups of one group commit, too (within a source).
    let a = [track("g1", "u1", "A")];
    let b = [track("g1", "u2", "A"), track("g2", "u2", "B")];
    let outcome = store.append_groups(&[("web", &a[..]), ("web", &b[..])]).await.unwrap();
    assert_eq!(outcome, vec![vec![Appended::New], vec![Appended::Duplicate, Appended::New]]);
    assert_eq!(store.count_message_ids(&ids(&["g1"])).await.unwrap()["g1"], 1);
}

async fn a_message_id_is_unique_per_source_not_across_sources(store: Store) {
    // Two products that happen to use the same id each keep their event; each one's
    // resend is still a duplicate, in a call of its own and inside one group commit.
    assert_eq!(store.append("web", &[track("m1", "u1", "A")]).await.unwrap(), vec![Appended::New]);
    assert_eq!(store.append("mobile", &[track("m1", "u2", "B")]).await.unwrap(), vec![Appended::New]);
    assert_eq!(store.append("mobile", &[track("m1", "u2", "B")]).await.unwrap(), vec![Appended::Duplicate]);
    let a = [track("g1", "u1", "A")];
    let b = [track("g1", "u2", "A"), track("m1", "u2", "B")];
    let c = [track("g1", "u3", "C")];
    let outcome = store.append_groups(&[("web", &a[..]), ("mobile", &b[..]), ("web", &c[..])]).await.unwrap();
    assert_eq!(outcome, vec![vec![Appended::New], vec![Appended::New, Appended::Duplicate], vec![Appended::Duplicate]]);
    // An identify from another source with an id already used is applied, not skipped.
    let identify = |source_name: &str| {
        msg(json!({ "type": "identify", "messageId": "i1", "userId": source_name, "traits": { "name": source_name } }))
    };
    assert_eq!(store.append("web", &[identify("ada")]).await.unwrap(), vec![Appended::New]);
    assert_eq!(store.append("mobile", &[identify("bob")]).await.unwrap(), vec![Appended::New]);
    assert!(has_contact(&store.snapshot().await.unwrap(), "product:bob"), "mobile's identify was applied");

    let counts = store.count_message_ids(&ids(&["m1", "g1", "i1"])).await.unwrap();
    assert_eq!(counts, HashMap::from([("m1".to_string(), 2), ("g1".to_string(), 2), ("i1".to_string(), 2)]));
    let snap = store.snapshot().await.unwrap();
    let m1: Vec<&Value> = snap["events"].as_array().unwrap().iter().filter(|e| e[0] == "m1").map(|e| &e[7]).collect();
    assert_eq!(m1, vec!["mobile", "web"]);
    assert_eq!(store.doctor(today()).await.unwrap().totals.events, 6);
}

async fn a_bulk_import_deduplicates_per_source(store: Store) {
    // The bulk path (an NDJSON import) keeps the same rule as live appends.
    let batch: Vec<_> = (0..2500).map(|i| track(&format!("b{i}"), "u1", "E")).collect();
    let mut bulk = store.bulk_append().await.unwrap();
    let outcome = bulk.append("web", &batch).await.unwrap();
    assert!(outcome.iter().all(|o| *o == Appended::New));
    let outcome = bulk.append("import", &batch).await.unwrap();
    assert!(outcome.iter().all(|o| *o == Appended::New), "another source's ids are its own");
    let outcome = bulk.append("import", &batch).await.unwrap();
    assert!(outcome.iter().all(|o| *o == Appended::Duplicate));
    bulk.commit().await.unwrap();
    assert_eq!(store.count_message_ids(&ids(&["b0", "b2499"])).await.unwrap()["b2499"], 2);
}

async fn last_seq_grows_with_every_new_event_and_only_then(store: Store) {
    assert_eq!(store.last_seq().await.unwrap(), 0, "an empty log");
    let mut last = 0;
    for round in 0..4 {
        let batch: Vec<_> = (0..3).map(|i| track(&format!("m{round}-{i}"), "u1", "E")).collect();
        append_new(&store, "web", batch.clone()).await;
        let seq = store.last_seq().await.unwrap();
        assert!(seq >= last + 3, "round {round}: last_seq went from {last} to {seq} for 3 new events");
        last = seq;
        // Resending changes nothing, not even the sequence.
        store.append("web", &batch).await.unwrap();
        assert_eq!(store.last_seq().await.unwrap(), last, "round {round}: duplicates must not move last_seq");
    }
}

async fn a_large_batch_is_stored_once_with_its_properties_intact(store: Store) {
    // Large enough for PostgreSQL's COPY path, with raw tabs, line breaks and escapes in
    // the JSON text (all of which COPY's text format must escape).
    const N: usize = 2_500;
    let text = r#"backslash \\ quote \" tab \t ünïcødé"#;
    let batch: Vec<_> = (0..N)
        .map(|i| {
            msg_text(&format!(
                "{{\"type\":\"track\",\"messageId\":\"bulk-{i:05}\",\"anonymousId\":\"anon-{}\",\"event\":\"Bulk\",\"timestamp\":\"2026-02-01T00:00:00Z\",\r\n\"properties\":{{\"i\":\t{i},\r\n \"text\":\"{text}\"}}}}",
                i % 7
            ))
        })
        .collect();
    assert!(
        batch[0].properties.as_deref().unwrap().contains("\t0,\r\n"),
        "the test sends raw whitespace: {:?}",
        batch[0].properties
    );

    let mut first_half = batch[..N / 2].to_vec();
    first_half.push(batch[0].clone());
    let outcome = store.append("import", &first_half).await.unwrap();
    assert!(outcome[..N / 2].iter().all(|a| *a == Appended::New));
    assert_eq!(outcome[N / 2], Appended::Duplicate, "repeated inside the call");

    let mut all = batch.clone();
    all.push(batch[N - 1].clone());
    let outcome = store.append("import", &all).await.unwrap();
    assert!(outcome[..N / 2].iter().all(|a| *a == Appended::Duplicate), "the first half was stored before");
    assert!(outcome[N / 2..N].iter().all(|a| *a == Appended::New), "the second half is new");
    assert_eq!(outcome[N], Appended::Duplicate, "repeated inside the call");

    let message_ids: Vec<String> = batch.iter().map(|m| m.message_id.clone()).collect();
    let counts = store.count_message_ids(&message_ids).await.unwrap();
    assert!(counts.len() == N && counts.values().all(|n| *n == 1));
    assert_eq!(store.doctor(today()).await.unwrap().totals.events, N as u64);

    let snap = store.snapshot().await.unwrap();
    let events = snap["events"].as_array().unwrap();
    assert_eq!(events.len(), N);
    for i in [0, N / 2 - 1, N / 2, N - 1] {
        let stored = &events[i];
        assert_eq!(stored[0], batch[i].message_id.as_str());
        assert_eq!(stored[8].as_str(), batch[i].properties.as_deref(), "event {i}: properties are kept byte for byte");
        assert_eq!(stored[6], timestamp("2026-02-01T00:00:00Z").as_millisecond());
        let properties: Value = serde_json::from_str(stored[8].as_str().unwrap()).unwrap();
        assert_eq!(properties["text"], "backslash \\ quote \" tab \t ünïcødé");
    }
}

async fn concurrent_requests_through_the_appender_are_all_committed(store: Store) {
    let appender = Appender::start(store.clone());
    let requests: Vec<_> = (0..8)
        .map(|r| {
            let appender = appender.clone();
            let batch: Vec<_> = (0..5).map(|i| track(&format!("r{r}-{i}"), &format!("u{r}"), "E")).collect();
            tokio::spawn(async move { appender.append("web", batch).await })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap().unwrap(), vec![Appended::New; 5]);
    }
    let again = appender.append("web", vec![track("r0-0", "u0", "E")]).await.unwrap();
    assert_eq!(again, vec![Appended::Duplicate]);
    assert_eq!(store.doctor(today()).await.unwrap().totals.events, 40);
}

// =======================================================================================
// Identity

async fn identify_creates_a_contact_and_matches_earlier_anonymous_events(store: Store) {
    append_new(
        &store,
        "web",
        vec![
            msg(json!({ "type": "track", "messageId": "t1", "anonymousId": "anon-1", "event": "Pricing Viewed" })),
            msg(json!({ "type": "page", "messageId": "p1", "anonymousId": "anon-1", "name": "Home" })),
        ],
    )
    .await;
    let before = store.doctor(today()).await.unwrap();
    assert_eq!(
        before.unmatched,
        Unmatched {
            events_without_contact: 2,
            events_without_account: 2,
            events_matched_to_nobody: 2,
            contacts_without_account: 0
        }
    );

    append_new(
        &store,
        "web",
        vec![msg(json!({
            "type": "identify", "messageId": "i1", "userId": "u1", "anonymousId": "anon-1",
            "traits": { "email": "Ada@Acme.com", "name": "Ada Lovelace", "favourite_colour": "green" },
        }))],
    )
    .await;
    let snap = store.snapshot().await.unwrap();
    assert_eq!(contacts(&snap).len(), 1);
    let ada = contact(&snap, "product:u1");
    assert_eq!(ada["ids"], json!(["product:u1(identify)"]));
    assert_eq!(ada["aliases"], json!(["anon-1(identify)"]));
    assert_eq!(ada["email"], "ada@acme.com");
    assert_eq!(ada["name"], "Ada Lovelace");
    assert_eq!(ada["traits"], json!({ "favourite_colour": "green" }));

    let after = store.doctor(today()).await.unwrap();
    assert_eq!(after.totals.contacts, 1);
    assert_eq!(
        after.unmatched,
        Unmatched {
            events_without_contact: 0,
            events_without_account: 3,
            events_matched_to_nobody: 0,
            contacts_without_account: 1
        },
        "the anonymous events now belong to Ada (who has no account yet)"
    );
}

async fn a_group_call_creates_the_account_and_links_the_contact(store: Store) {
    append_new(
        &store,
        "web",
        vec![
            msg(json!({ "type": "identify", "messageId": "i1", "userId": "u1", "traits": { "name": "Ada" } })),
            track("t1", "u1", "Report Viewed"),
            msg(json!({
                "type": "group", "messageId": "g1", "userId": "u1", "groupId": "acme-prod",
                "traits": { "name": "Acme", "plan": "team", "seats": 25, "region": "EMEA" },
            })),
        ],
    )
    .await;
    let snap = store.snapshot().await.unwrap();
    assert_eq!(accounts(&snap).len(), 1);
    let acme = account(&snap, "product:acme-prod");
    assert_eq!(acme["ids"], json!(["product:acme-prod(group)"]));
    assert_eq!((&acme["name"], &acme["plan"], &acme["seats"]), (&json!("Acme"), &json!("team"), &json!(25)));
    assert_eq!(acme["traits"], json!({ "region": "EMEA" }));
    let ada = contact(&snap, "product:u1");
    assert_eq!(ada["account"], acme["ids"]);
    assert_eq!(ada["account_match_basis"], "group_call");

    let report = store.doctor(today()).await.unwrap();
    assert_eq!(report.unmatched, Unmatched::default(), "every event reaches the account through Ada");
    assert_eq!(report.accounts_without_crm_id, Finding { count: 1, examples: vec!["product:acme-prod".into()] });

    // A second group call updates the same account.
    append_new(&store, "web", vec![msg(json!({ "type": "group", "messageId": "g2", "userId": "u1", "groupId": "acme-prod", "traits": { "seats": 30 } }))]).await;
    let snap = store.snapshot().await.unwrap();
    assert_eq!(accounts(&snap).len(), 1);
    assert_eq!(account(&snap, "product:acme-prod")["seats"], 30);
    assert_eq!(account(&snap, "product:acme-prod")["plan"], "team");
}

async fn a_track_with_context_group_id_is_bound_to_the_account(store: Store) {
    append_new(
        &store,
        "web",
        vec![
            msg(json!({ "type": "group", "messageId": "g1", "userId": "u1", "groupId": "acme-prod", "traits": { "name": "Acme" } })),
            // Someone the store does not know, inside Acme's workspace…
            msg(json!({ "type": "track", "messageId": "t1", "anonymousId": "anon-9", "event": "Report Viewed", "context": { "groupId": "acme-prod" } })),
            // …and in a workspace it does not know either.
            msg(json!({ "type": "track", "messageId": "t2", "anonymousId": "anon-9", "event": "Report Viewed", "context": { "groupId": "unknown-co" } })),
        ],
    )
    .await;
    let report = store.doctor(today()).await.unwrap();
    assert_eq!(
        report.unmatched,
        Unmatched {
            events_without_contact: 2,
            events_without_account: 1,
            events_matched_to_nobody: 1,
            contacts_without_account: 0
        }
    );
    let events = store.snapshot().await.unwrap()["events"].clone();
    assert_eq!(events[1][5], "acme-prod", "the event keeps its group id");

    // Once that account exists, the other event is bound to it too.
    append_new(
        &store,
        "web",
        vec![msg(json!({ "type": "group", "messageId": "g2", "userId": "u2", "groupId": "unknown-co" }))],
    )
    .await;
    let report = store.doctor(today()).await.unwrap();
    assert_eq!(report.unmatched.events_without_account, 0);
}

async fn identify_with_the_email_of_a_crm_contact_attaches_the_product_id(store: Store) {
    import_accounts(&store, Source::Crm, ACCOUNTS).await;
    import_contacts(&store, Source::Crm, "external_id,account_external_id,email,name\nC1,A1,ada@acme.com,Ada").await;
    append_new(
        &store,
        "web",
        vec![
            msg(json!({ "type": "identify", "messageId": "i1", "userId": "u1", "traits": { "email": "ADA@acme.com", "name": "Ada Lovelace" } })),
            track("t1", "u1", "Report Viewed"),
        ],
    )
    .await;
    let snap = store.snapshot().await.unwrap();
    assert_eq!(contacts(&snap).len(), 1, "no second contact for the same person");
    let ada = contact(&snap, "crm:C1");
    assert_eq!(ada["ids"], json!(["crm:C1(import)", "product:u1(email_match)"]));
    assert_eq!(ada["name"], "Ada Lovelace");
    assert_eq!(ada["account"], account(&snap, "crm:A1")["ids"]);
    assert_eq!(ada["account_match_basis"], "import");
    assert_eq!(store.doctor(today()).await.unwrap().unmatched, Unmatched::default());

    // The other way round: a CRM contact imported after the product identified the person.
    append_new(
        &store,
        "web",
        vec![msg(
            json!({ "type": "identify", "messageId": "i2", "userId": "u2", "traits": { "email": "bob@globex.com" } }),
        )],
    )
    .await;
    import_contacts(&store, Source::Crm, "external_id,account_external_id,email\nC2,A2,bob@globex.com").await;
    let snap = store.snapshot().await.unwrap();
    assert_eq!(contacts(&snap).len(), 2);
    assert_eq!(contact(&snap, "product:u2")["ids"], json!(["crm:C2(email_match)", "product:u2(identify)"]));
}

async fn alias_links_the_previous_id_to_the_contact(store: Store) {
    append_new(&store, "web", vec![track("t1", "legacy-7", "Signed Up")]).await;
    assert_eq!(store.doctor(today()).await.unwrap().unmatched.events_without_contact, 1);

    append_new(
        &store,
        "web",
        vec![
            msg(json!({ "type": "identify", "messageId": "i1", "userId": "u1", "traits": { "name": "Ada" } })),
            msg(json!({ "type": "alias", "messageId": "a1", "userId": "u1", "previousId": "legacy-7" })),
            msg(json!({ "type": "track", "messageId": "t2", "anonymousId": "legacy-7", "event": "Logged In" })),
        ],
    )
    .await;
    let snap = store.snapshot().await.unwrap();
    assert_eq!(contacts(&snap).len(), 1);
    assert_eq!(contact(&snap, "product:u1")["aliases"], json!(["legacy-7(alias)"]));
    let report = store.doctor(today()).await.unwrap();
    assert_eq!(report.totals.events, 4);
    assert_eq!(report.unmatched.events_without_contact, 0, "events under the previous id are Ada's");
}

// =======================================================================================
// Doctor

async fn doctor_reports_exact_numbers_for_a_small_dataset(store: Store) {
    import_accounts(
        &store,
        Source::Crm,
        "
        external_id,name,renewal_date,domains,billing_id
        A1,Acme,,acme.com,
        A2,Globex,2026-09-30,globex.com,cus_2
        A3,Initech,,,
        A4,Umbrella,,,
        ",
    )
    .await;
    import_subscriptions(
        &store,
        Source::Crm,
        "
        id,account_id,start_date,end_date,arr
        S1,A1,2026-01-01,2026-12-31,12000
        S2,A4,2025-01-01,2025-12-31,5000
        ",
    )
    .await;
    import_contacts(
        &store,
        Source::Crm,
        "
        external_id,account_external_id,email,name
        C1,A1,ada@acme.com,Ada
        C2,A1,bob@acme.com,Bob
        C3,A2,Ada@Acme.com,Ada again
        C4,,carl@nowhere.org,Carl
        ",
    )
    .await;
    let web = |json| msg_received_at("2026-03-01T12:00:00Z", json);
    append_new(
        &store,
        "web",
        vec![
            web(json!({ "type": "identify", "messageId": "w1", "userId": "u1", "traits": { "email": "dan@acme.com" }, "timestamp": "2026-02-20T08:00:00Z" })),
            web(json!({ "type": "track", "messageId": "w2", "userId": "u1", "event": "Report Viewed", "timestamp": "2026-02-27T10:00:00Z" })),
            web(json!({ "type": "track", "messageId": "w3", "anonymousId": "anon-x", "event": "Pricing Viewed", "timestamp": "2026-02-28T09:00:00Z" })),
        ],
    )
    .await;
    let mobile = |json| msg_received_at("2026-03-01T11:00:00Z", json);
    append_new(
        &store,
        "mobile",
        vec![
            mobile(json!({ "type": "group", "messageId": "m1", "userId": "u9", "groupId": "g9", "traits": { "name": "Hooli" }, "timestamp": "2026-02-25T00:00:00Z" })),
            mobile(json!({ "type": "screen", "messageId": "m2", "userId": "ghost", "name": "Home", "context": { "groupId": "g9" }, "timestamp": "2026-02-26T00:00:00Z" })),
        ],
    )
    .await;

    let report = store.doctor(today()).await.unwrap();
    let finding =
        |count, examples: &[&str]| Finding { count, examples: examples.iter().map(|e| e.to_string()).collect() };
    let expected = DoctorReport {
        as_of: "2026-03-01".into(),
        // A1–A4 and g9; C1–C4, u1 (dan) and u9; S1, S2; 5 events.
        totals: Totals { accounts: 5, contacts: 6, subscription_lines: 2, events: 5 },
        unmatched: Unmatched {
            events_without_contact: 2,   // w3 (anon-x), m2 (ghost)
            events_without_account: 1,   // w3; m2 reaches g9 by its context.groupId
            events_matched_to_nobody: 1, // w3
            contacts_without_account: 1, // C4; dan joins A1 by domain, u9 joins g9 by the group call
        },
        accounts_without_crm_id: finding(1, &["product:g9"]),
        // A1 has S1; S2 (A4) ended last year.
        accounts_without_arr: finding(4, &["crm:A2", "crm:A3", "crm:A4", "product:g9"]),
        // A1's S1 ends in the future; A2 has a renewal date.
        accounts_without_renewal_date: finding(3, &["crm:A3", "crm:A4", "product:g9"]),
        duplicate_emails: finding(1, &["ada@acme.com"]),
        contacts_without_account: finding(1, &["carl@nowhere.org"]),
        sources: vec![
            SourceFreshness {
                source: "mobile".into(),
                events: 2,
                newest_event_at: "2026-02-26T00:00:00Z".into(),
                newest_received_at: "2026-03-01T11:00:00Z".into(),
            },
            SourceFreshness {
                source: "web".into(),
                events: 3,
                newest_event_at: "2026-02-28T09:00:00Z".into(),
                newest_received_at: "2026-03-01T12:00:00Z".into(),
            },
        ],
    };
    assert_eq!(report, expected);
    assert!(!report.is_clean());
}

async fn doctor_on_an_empty_store_is_clean(store: Store) {
    let report = store.doctor(today()).await.unwrap();
    assert_eq!(report, DoctorReport { as_of: TODAY.into(), ..DoctorReport::default() });
    assert!(report.is_clean());
}

// =======================================================================================
// API keys and import runs

async fn an_api_key_is_found_by_its_hash(store: Store) {
    let at = timestamp(RECEIVED_AT);
    store.create_api_key(KeyKind::Write, "web", "hash-of-write-key", "ck_w_12ab", at).await.unwrap();
    store.create_api_key(KeyKind::Secret, "ops", "hash-of-secret-key", "ck_s_34cd", at).await.unwrap();

    let write = store.find_api_key("hash-of-write-key").await.unwrap().expect("the write key");
    assert_eq!((write.kind, write.name.as_str(), write.prefix.as_str()), (KeyKind::Write, "web", "ck_w_12ab"));
    let secret = store.find_api_key("hash-of-secret-key").await.unwrap().expect("the secret key");
    assert_eq!((secret.kind, secret.name.as_str(), secret.prefix.as_str()), (KeyKind::Secret, "ops", "ck_s_34cd"));
    assert_ne!(write.id, secret.id);
}

async fn an_unknown_api_key_hash_finds_nothing(store: Store) {
    assert_eq!(store.find_api_key("hash-of-nothing").await.unwrap(), None);
    store.create_api_key(KeyKind::Publishable, "widget", "hash-a", "ck_p_0000", timestamp(RECEIVED_AT)).await.unwrap();
    assert_eq!(store.find_api_key("hash-b").await.unwrap(), None);
    assert_eq!(store.find_api_key("HASH-A").await.unwrap(), None, "hashes match exactly");
}

async fn an_import_run_can_be_recorded(store: Store) {
    let run = ImportRun {
        kind: "accounts".into(),
        file: "accounts.csv".into(),
        source: "crm".into(),
        started_at: timestamp(RECEIVED_AT).as_millisecond(),
        finished_at: timestamp(RECEIVED_AT).as_millisecond() + 1_500,
        rows_total: 3,
        rows_ok: 2,
        rows_rejected: 1,
        rejects: json!([{ "line": 3, "column": "seats", "reason": "`many` is not a whole number ≥ 0" }]),
    };
    store.record_import_run(&run).await.unwrap();
    store.record_import_run(&run).await.unwrap();
}

// =======================================================================================
// What the engine reads and keeps

/// The internal id of the account with this external id.
async fn account_id(store: &Store, external_id: &str) -> i64 {
    store.resolve_account(external_id).await.unwrap().unwrap_or_else(|| panic!("no account `{external_id}`"))
}

/// The internal id of the contact with this email.
async fn contact_id(store: &Store, email: &str) -> i64 {
    let contacts = store.engine_contacts().await.unwrap();
    contacts.iter().find(|c| c.email.as_deref() == Some(email)).unwrap_or_else(|| panic!("no contact {email}")).id
}

async fn events_after_resolves_identity_now_even_for_events_stored_before_it_was_known(store: Store) {
    append_new(
        &store,
        "web",
        vec![
            msg(json!({ "type": "track", "messageId": "t1", "anonymousId": "anon-1", "event": "Pricing Viewed",
                        "properties": { "plan": "team" }, "timestamp": "2026-02-01T10:00:00Z" })),
            msg(json!({ "type": "page", "messageId": "p1", "anonymousId": "anon-1", "name": "Home", "timestamp": "2026-02-01T10:01:00Z" })),
        ],
    )
    .await;
    let before = store.events_after(0, 100).await.unwrap();
    assert_eq!(before.len(), 2);
    let t1 = &before[0];
    assert_eq!((t1.kind.as_str(), t1.name.as_deref(), t1.source.as_str()), ("track", Some("Pricing Viewed"), "web"));
    assert_eq!(t1.ts, timestamp("2026-02-01T10:00:00Z"));
    assert_eq!(t1.properties.as_deref(), Some(r#"{"plan":"team"}"#), "properties are the JSON text as sent");
    assert_eq!((t1.contact_id, t1.account_id), (None, None), "nobody is known yet");
    assert_eq!((before[1].kind.as_str(), before[1].name.as_deref()), ("page", Some("Home")), "a page's name");

    // Ada identifies (with the anonymous id of her earlier visit) and joins Acme.
    append_new(
        &store,
        "web",
        vec![
            msg(json!({ "type": "identify", "messageId": "i1", "userId": "u1", "anonymousId": "anon-1",
                        "traits": { "email": "ada@acme.com" } })),
            msg(json!({ "type": "group", "messageId": "g1", "userId": "u1", "groupId": "acme", "traits": { "name": "Acme" } })),
            msg(json!({ "type": "screen", "messageId": "s1", "userId": "u1", "name": "Dashboard" })),
            msg(json!({ "type": "track", "messageId": "t2", "userId": "nobody-yet", "event": "Opened" })),
        ],
    )
    .await;
    let (ada, acme) = (contact_id(&store, "ada@acme.com").await, account_id(&store, "acme").await);
    let after = store.events_after(0, 100).await.unwrap();
    let summary: Vec<(&str, Option<i64>, Option<i64>)> =
        after.iter().map(|e| (e.kind.as_str(), e.contact_id, e.account_id)).collect();
    assert_eq!(
        summary,
        vec![
            ("track", Some(ada), Some(acme)),
            ("page", Some(ada), Some(acme)),
            ("screen", Some(ada), Some(acme)),
            ("track", None, None),
        ],
        "identify and group calls are not behaviour events; earlier events now resolve to Ada at Acme"
    );
    assert!(after.windows(2).all(|w| w[0].seq < w[1].seq), "in seq order");

    // A cursor and a limit page through the log.
    let first = store.events_after(0, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].seq, after[0].seq);
    let rest = store.events_after(first[0].seq, 2).await.unwrap();
    assert_eq!(rest.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![after[1].seq, after[2].seq]);
    assert!(store.events_after(after[3].seq, 100).await.unwrap().is_empty(), "nothing after the last event");
}

async fn event_times_and_events_by_seq_give_back_the_log_in_time_order(store: Store) {
    // Events arrive out of time order, with an identify call among them, and enough of
    // them that events_by_seq reads in several batches.
    let mut batch: Vec<_> = (0..1_200)
        .map(|i| {
            let minute = (i * 7) % 1_200;
            msg(json!({ "type": "track", "messageId": format!("e{i}"), "userId": "u1", "event": format!("E{i}"),
                        "timestamp": (timestamp("2026-01-01T00:00:00Z") + jiff::SignedDuration::from_mins(minute)).to_string() }))
        })
        .collect();
    batch.insert(
        600,
        msg(json!({ "type": "identify", "messageId": "i1", "userId": "u1", "traits": { "name": "Ada" } })),
    );
    append_new(&store, "import", batch).await;
    let last = store.last_seq().await.unwrap();

    let times = store.event_times(last).await.unwrap();
    assert_eq!(times.len(), 1_200, "track, page and screen only");
    assert!(times.windows(2).all(|w| w[0].0 < w[1].0), "in seq order");
    let cut = times[99].0;
    assert_eq!(store.event_times(cut).await.unwrap(), times[..100].to_vec(), "up to and including up_to_seq");
    assert!(store.event_times(0).await.unwrap().is_empty());

    let mut by_time = times.clone();
    by_time.sort_by_key(|(seq, ts)| (*ts, *seq));
    let seqs: Vec<i64> = by_time.iter().map(|(seq, _)| *seq).collect();
    let events = store.events_by_seq(&seqs).await.unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), seqs, "in the order asked for");
    assert!(events.windows(2).all(|w| w[0].ts <= w[1].ts));
    for (e, (seq, ts)) in events.iter().zip(&by_time) {
        assert_eq!((e.seq, e.ts), (*seq, *ts));
    }
    let all = store.events_after(0, 10_000).await.unwrap();
    let e = events.iter().find(|e| e.seq == all[0].seq).unwrap();
    assert_eq!(e, &all[0], "the same event whichever way it is read");

    // Missing seqs (and the identify call's) are skipped; a seq asked twice comes twice.
    let identify_seq = (1..=last).find(|s| !times.iter().any(|(t, _)| t == s)).expect("the identify call's seq");
    let asked = [seqs[5], last + 100, identify_seq, seqs[5], seqs[0]];
    let got: Vec<i64> = store.events_by_seq(&asked).await.unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(got, vec![seqs[5], seqs[5], seqs[0]]);
    assert!(store.events_by_seq(&[]).await.unwrap().is_empty());
}

async fn engine_accounts_have_arr_on_the_day_and_custom_traits(store: Store) {
    import_accounts(
        &store,
        Source::Crm,
        "
        external_id,name,industry,employees,plan,seats,owner_email,start_date,renewal_date,product_id,region,tier
        A1,Acme,Manufacturing,250,team,25,csm@cairn.dev,2026-01-15,2027-01-14,acme,EMEA,2
        A2,Globex,,,,,,,,,,
        ",
    )
    .await;
    import_subscriptions(
        &store,
        Source::Crm,
        "
        id,account_id,start_date,end_date,arr
        S1,A1,2026-01-01,2026-03-31,1200
        S2,A1,2026-03-31,2026-12-31,600.50
        S3,A1,2026-04-01,2026-04-01,10
        ",
    )
    .await;
    let arr_of_acme = |day: &'static str| {
        let store = store.clone();
        async move {
            let accounts = store.engine_accounts(date(day)).await.unwrap();
            accounts.into_iter().find(|a| a.crm_id.as_deref() == Some("A1")).unwrap().arr_cents
        }
    };
    assert_eq!(arr_of_acme("2025-12-31").await, None, "no line yet: no ARR, not zero");
    assert_eq!(arr_of_acme("2026-03-30").await, Some(120_000));
    assert_eq!(arr_of_acme("2026-03-31").await, Some(180_050), "S1's last day is S2's first: both count");
    assert_eq!(arr_of_acme("2026-04-01").await, Some(60_050 + 1_000), "S1 ended; the one-day S3 counts");
    assert_eq!(arr_of_acme("2026-04-02").await, Some(60_050));
    assert_eq!(arr_of_acme("2027-01-01").await, None);

    let accounts = store.engine_accounts(date("2026-03-31")).await.unwrap();
    assert_eq!(accounts.len(), 2);
    assert!(accounts[0].id < accounts[1].id, "by id");
    let acme = &accounts[0];
    assert_eq!(
        (acme.name.as_deref(), acme.industry.as_deref(), acme.employees, acme.plan.as_deref(), acme.seats),
        (Some("Acme"), Some("Manufacturing"), Some(250), Some("team"), Some(25))
    );
    assert_eq!(acme.owner_email.as_deref(), Some("csm@cairn.dev"));
    assert_eq!((acme.start_date, acme.renewal_date), (Some(date("2026-01-15")), Some(date("2027-01-14"))));
    assert_eq!((acme.crm_id.as_deref(), acme.product_id.as_deref()), (Some("A1"), Some("acme")));
    assert_eq!(Value::Object(acme.traits.clone()), json!({ "region": "EMEA", "tier": 2 }));
    let globex = &accounts[1];
    assert_eq!((globex.crm_id.as_deref(), globex.product_id.as_deref(), globex.arr_cents), (Some("A2"), None, None));
    assert_eq!((globex.industry.as_deref(), globex.start_date), (None, None));
    assert!(globex.traits.is_empty());

    // Contacts, with their account and custom traits.
    import_contacts(
        &store,
        Source::Crm,
        "
        external_id,account_external_id,email,name,role,timezone,nps
        C1,A1,ada@acme.com,Ada,Admin,Europe/London,9
        C2,,carl@nowhere.org,,,,
        ",
    )
    .await;
    let contacts = store.engine_contacts().await.unwrap();
    assert_eq!(contacts.len(), 2);
    let ada = &contacts[0];
    assert_eq!(
        (ada.account_id, ada.email.as_deref(), ada.name.as_deref(), ada.role.as_deref(), ada.timezone.as_deref()),
        (Some(acme.id), Some("ada@acme.com"), Some("Ada"), Some("admin"), Some("Europe/London"))
    );
    assert_eq!(Value::Object(ada.traits.clone()), json!({ "nps": 9 }));
    assert_eq!((contacts[1].account_id, contacts[1].traits.is_empty()), (None, true));
}

async fn an_account_is_resolved_from_the_id_a_user_types(store: Store) {
    import_accounts(
        &store,
        Source::Crm,
        "
        external_id,name,product_id,billing_id,support_id
        A1,Acme,acme,cus_1,zd_1
        A2,Globex,,,
        007,Bond,,,
        ",
    )
    .await;
    // An id that is Globex's product id but Acme's billing id: the product id wins.
    import_accounts(&store, Source::Crm, "external_id,name,product_id\nA2,Globex,cus_1").await;
    let acme = account_id(&store, "A1").await;
    let globex = account_id(&store, "A2").await;
    let bond = account_id(&store, "007").await;
    assert_eq!(store.resolve_account(&acme.to_string()).await.unwrap(), Some(acme), "the internal number");
    assert_eq!(store.resolve_account(&format!(" {globex} ")).await.unwrap(), Some(globex), "spaces are ignored");
    assert_eq!(store.resolve_account("acme").await.unwrap(), Some(acme), "a product id");
    assert_eq!(store.resolve_account("zd_1").await.unwrap(), Some(acme), "a support id");
    assert_eq!(store.resolve_account("cus_1").await.unwrap(), Some(globex), "product before billing");
    assert_eq!(store.resolve_account("007").await.unwrap(), Some(bond), "`007` is an external id, not account 7");
    assert_eq!(store.resolve_account(&format!("account#{acme}")).await.unwrap(), Some(acme), "a report label");
    assert_eq!(store.resolve_account("billing:cus_1").await.unwrap(), Some(acme), "a source-qualified id");
    for unknown in ["A9", "999999", "", "crm:A9", "account#999999", "nowhere:A1"] {
        assert_eq!(store.resolve_account(unknown).await.unwrap(), None, "`{unknown}`");
    }

    // A CRM id that looks like another account's number: the number wins.
    import_accounts(&store, Source::Crm, &format!("external_id,name\n{acme},Numbered")).await;
    assert_eq!(store.resolve_account(&acme.to_string()).await.unwrap(), Some(acme));
}

fn transition(key: &str, at: &str, subject_kind: &str, subject_id: i64, kind: &str) -> cairn_store::NewTransition {
    cairn_store::NewTransition {
        key: key.into(),
        at: timestamp(at),
        subject_kind: subject_kind.into(),
        subject_id,
        kind: kind.into(),
        detail: json!({ "key": key }).to_string(),
        backfill: false,
    }
}

async fn journey_transitions_and_survey_answers_are_read_for_the_reports(store: Store) {
    import_accounts(&store, Source::Crm, ACCOUNTS).await;
    import_contacts(&store, Source::Crm, "external_id,account_external_id,email\nC1,A1,ada@acme.com").await;
    let (acme, globex) = (account_id(&store, "A1").await, account_id(&store, "A2").await);
    let ada = contact_id(&store, "ada@acme.com").await;
    let rows = vec![
        transition("j1", "2026-02-02T00:00:00Z", "account", acme, "milestone_achieved"),
        transition("j2", "2026-02-01T00:00:00Z", "account", globex, "stage_changed"),
        transition("j3", "2026-02-01T00:00:00Z", "account", acme, "segment_entered"),
        transition("j4", "2026-02-01T00:00:00Z", "contact", ada, "milestone_missed"),
        transition("j5", "2026-02-05T00:00:00Z", "account", acme, "milestone_missed"),
    ];
    store.append_transitions(&rows).await.unwrap();
    let read = store.journey_transitions(timestamp("2026-02-02T00:00:00Z")).await.unwrap();
    let keys: Vec<&str> = read.iter().map(|t| t.detail["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["j2", "j1"], "accounts' journey kinds only, oldest first, up to the instant included");

    append_new(
        &store,
        "web",
        vec![
            msg(json!({ "type": "identify", "messageId": "i1", "userId": "u-ada", "traits": { "email": "ada@acme.com" } })),
            msg(json!({ "type": "track", "messageId": "n1", "userId": "u-ada", "event": "nps_submitted", "timestamp": "2026-02-10T09:00:00Z", "properties": { "score": 9 } })),
            msg(json!({ "type": "track", "messageId": "n2", "anonymousId": "x", "event": "csat_submitted", "timestamp": "2026-02-11T09:00:00Z", "properties": { "score": 4 } })),
            msg(json!({ "type": "track", "messageId": "n3", "userId": "u-ada", "event": "nps_submitted", "timestamp": "2026-01-31T23:59:59Z", "properties": { "score": 3 } })),
            msg(json!({ "type": "track", "messageId": "n4", "userId": "u-ada", "event": "page_viewed", "timestamp": "2026-02-10T09:00:00Z" })),
        ],
    )
    .await;
    let answers = store
        .survey_answer_events(
            &["nps_submitted", "csat_submitted"],
            timestamp("2026-02-01T00:00:00Z"),
            timestamp("2026-03-01T00:00:00Z"),
        )
        .await
        .unwrap();
    let got: Vec<(&str, Option<i64>, Option<i64>, Value)> =
        answers.iter().map(|a| (a.event.as_str(), a.contact_id, a.account_id, a.properties["score"].clone())).collect();
    assert_eq!(
        got,
        [("nps_submitted", Some(ada), Some(acme), json!(9)), ("csat_submitted", None, None, json!(4))],
        "named events in the window only, with the identity they resolve to"
    );
    assert_eq!(answers[0].at, timestamp("2026-02-10T09:00:00Z"));
    assert!(
        store
            .survey_answer_events(&[], timestamp("2026-02-01T00:00:00Z"), timestamp("2026-03-01T00:00:00Z"))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn transitions_are_stored_once_by_key_and_read_back_in_order(store: Store) {
    import_accounts(&store, Source::Crm, ACCOUNTS).await;
    import_contacts(
        &store,
        Source::Crm,
        "external_id,account_external_id,email\nC1,A1,ada@acme.com\nC2,A2,bob@globex.com",
    )
    .await;
    let (acme, globex) = (account_id(&store, "A1").await, account_id(&store, "A2").await);
    let (ada, bob) = (contact_id(&store, "ada@acme.com").await, contact_id(&store, "bob@globex.com").await);

    let mut first = vec![
        transition("k1", "2026-02-01T00:00:00Z", "account", acme, "segment_entered"),
        transition("k2", "2026-02-03T00:00:00Z", "contact", ada, "milestone_achieved"),
        transition("k3", "2026-02-02T00:00:00Z", "account", globex, "segment_entered"),
        transition("k1", "2026-02-09T00:00:00Z", "account", acme, "repeated_in_the_same_call"),
    ];
    first[1].backfill = true;
    assert_eq!(store.append_transitions(&first).await.unwrap(), 3);
    let again = vec![
        transition("k2", "2026-02-03T00:00:00Z", "contact", ada, "milestone_achieved"),
        transition("k4", "2026-01-15T00:00:00Z", "account", acme, "health_band_changed"),
        transition("k5", "2026-02-04T00:00:00Z", "contact", bob, "milestone_missed"),
    ];
    assert_eq!(store.append_transitions(&again).await.unwrap(), 2, "k2 was stored before");
    assert_eq!(store.append_transitions(&[]).await.unwrap(), 0);

    let all = store.transitions_after(0, 100).await.unwrap();
    let keys: Vec<&str> = all.iter().map(|t| t.detail["key"].as_str().unwrap()).collect();
    assert_eq!(keys, vec!["k1", "k2", "k3", "k4", "k5"], "in the order stored");
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(all[0].kind, "segment_entered", "the first of a repeated key is kept");
    let k2 = &all[1];
    assert_eq!(
        (k2.at, k2.subject_kind.as_str(), k2.subject_id, k2.kind.as_str(), k2.backfill),
        (timestamp("2026-02-03T00:00:00Z"), "contact", ada, "milestone_achieved", true)
    );
    assert!(!all[0].backfill);
    let page: Vec<i64> = store.transitions_after(all[1].seq, 2).await.unwrap().iter().map(|t| t.seq).collect();
    assert_eq!(page, vec![all[2].seq, all[3].seq]);
    assert!(store.transitions_after(all[4].seq, 100).await.unwrap().is_empty());

    // Acme's timeline: its own and Ada's, newest first; nothing of Globex's or Bob's.
    let timeline = store.account_transitions(acme, 100).await.unwrap();
    let keys: Vec<&str> = timeline.iter().map(|t| t.detail["key"].as_str().unwrap()).collect();
    assert_eq!(keys, vec!["k2", "k1", "k4"]);
    let latest = store.account_transitions(acme, 1).await.unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].detail["key"], "k2");
    assert!(store.account_transitions(acme + globex + 100, 10).await.unwrap().is_empty());
}

async fn health_overrides_keep_an_audit_trail(store: Store) {
    import_accounts(&store, Source::Crm, ACCOUNTS).await;
    let (acme, globex) = (account_id(&store, "A1").await, account_id(&store, "A2").await);
    let at = |s: &str| timestamp(s);
    let set = store
        .insert_health_override(
            acme,
            Some(35.5),
            "champion left",
            "csm@cairn.dev",
            at("2026-03-01T09:00:00Z"),
            Some(at("2026-04-01T00:00:00Z")),
        )
        .await
        .unwrap();
    assert_eq!((set.account_id, set.score, set.reason.as_str()), (acme, Some(35.5), "champion left"));
    assert_eq!((set.set_by.as_str(), set.set_at), ("csm@cairn.dev", at("2026-03-01T09:00:00Z")));
    assert_eq!(set.expires_at, Some(at("2026-04-01T00:00:00Z")));
    let cleared = store
        .insert_health_override(acme, None, "new champion found", "lead@cairn.dev", at("2026-03-10T09:00:00Z"), None)
        .await
        .unwrap();
    store
        .insert_health_override(
            globex,
            Some(80.0),
            "exec sponsor happy",
            "csm@cairn.dev",
            at("2026-03-05T00:00:00Z"),
            None,
        )
        .await
        .unwrap();

    let trail = store.health_overrides(acme).await.unwrap();
    assert_eq!(trail, vec![set.clone(), cleared.clone()], "oldest first, every row kept");
    assert!(set.id < cleared.id);
    let latest = store.latest_health_overrides().await.unwrap();
    assert_eq!(latest.len(), 2, "one per account");
    let latest_of = |id: i64| latest.iter().find(|o| o.account_id == id).unwrap().clone();
    assert_eq!(latest_of(acme), cleared, "the latest row, even when it clears");
    assert_eq!(latest_of(globex).score, Some(80.0));
    assert!(store.health_overrides(acme + globex + 100).await.unwrap().is_empty());

    // Refused: an account that does not exist, a score that is not a number.
    let now = at("2026-03-11T00:00:00Z");
    let unknown = store.insert_health_override(acme + globex + 100, Some(50.0), "typo", "csm", now, None).await;
    assert!(matches!(unknown, Err(cairn_store::StoreError::Invalid(_))), "{unknown:?}");
    let nan = store.insert_health_override(acme, Some(f64::NAN), "bug", "csm", now, None).await;
    assert!(matches!(nan, Err(cairn_store::StoreError::Invalid(_))), "{nan:?}");
    assert_eq!(store.health_overrides(acme).await.unwrap().len(), 2, "refused rows change nothing");
}

async fn the_last_recorded_definitions_hash_is_known(store: Store) {
    assert_eq!(store.last_definitions_hash().await.unwrap(), None, "nothing recorded yet");
    let at = timestamp(RECEIVED_AT);
    store.record_definitions("sha256:aaa", "3 segments, 2 milestones", at).await.unwrap();
    assert_eq!(store.last_definitions_hash().await.unwrap().as_deref(), Some("sha256:aaa"));
    store.record_definitions("sha256:bbb", "4 segments, 2 milestones", at).await.unwrap();
    store.record_definitions("sha256:aaa", "back to 3 segments", at).await.unwrap();
    assert_eq!(store.last_definitions_hash().await.unwrap().as_deref(), Some("sha256:aaa"), "the last one recorded");
}

async fn change_counters_move_after_the_right_commits_and_not_after_reads(store: Store) {
    // Subscribed on a clone: every clone of a store shares the counters.
    let mut data = store.clone().data_changes();
    let mut events = store.event_appends();
    let mut moved = move || {
        let out = (data.has_changed().unwrap(), events.has_changed().unwrap());
        data.borrow_and_update();
        events.borrow_and_update();
        out
    };
    const DATA: (bool, bool) = (true, false);
    const EVENTS: (bool, bool) = (false, true);
    const BOTH: (bool, bool) = (true, true);
    const NONE: (bool, bool) = (false, false);

    import_accounts(&store, Source::Crm, ACCOUNTS).await;
    assert_eq!(moved(), DATA, "accounts imported");
    import_contacts(&store, Source::Crm, "external_id,account_external_id,email\nC1,A1,ada@acme.com").await;
    assert_eq!(moved(), DATA, "contacts imported");
    import_subscriptions(&store, Source::Crm, "id,account_id,start_date,end_date,arr\nS1,A1,2026-01-01,2026-12-31,100")
        .await;
    assert_eq!(moved(), DATA, "subscription lines imported");
    let rejected = store.upsert_contacts(Source::Crm, &contact_rows("external_id,account_external_id\nC9,A9")).await;
    assert!(rejected.unwrap()[0].is_err());
    assert_eq!(moved(), NONE, "every row rejected: nothing changed");

    append_new(&store, "web", vec![track("t1", "u1", "Report Viewed")]).await;
    assert_eq!(moved(), EVENTS, "a track call is an event, not a change of identities");
    store.append("web", &[track("t1", "u1", "Report Viewed")]).await.unwrap();
    assert_eq!(moved(), NONE, "a duplicate stores nothing");
    let identify = msg(json!({ "type": "identify", "messageId": "i1", "userId": "u1", "traits": { "name": "Ada" } }));
    append_new(&store, "web", vec![identify.clone()]).await;
    assert_eq!(moved(), BOTH, "an identify call is an event and changes a contact");
    store.append("web", &[identify]).await.unwrap();
    assert_eq!(moved(), NONE, "a resent identify call is applied once");

    let appender = Appender::start(store.clone());
    appender.append("web", vec![track("t2", "u1", "E")]).await.unwrap();
    assert_eq!(moved(), EVENTS, "the Appender's group commit");

    let mut bulk = store.bulk_append().await.unwrap();
    bulk.append("import", &[track("t3", "u1", "E")]).await.unwrap();
    assert_eq!(moved(), NONE, "not before the commit");
    bulk.commit().await.unwrap();
    assert_eq!(moved(), EVENTS, "a bulk import's commit");
    let mut bulk = store.bulk_append().await.unwrap();
    bulk.append("import", &[msg(json!({ "type": "group", "messageId": "g1", "userId": "u1", "groupId": "acme" }))])
        .await
        .unwrap();
    drop(bulk);
    assert_eq!(moved(), NONE, "a rolled-back bulk import");

    // Reads, and what the engine writes itself, move neither.
    store.doctor(today()).await.unwrap();
    store.snapshot().await.unwrap();
    store.events_after(0, 100).await.unwrap();
    store.event_times(100).await.unwrap();
    store.engine_accounts(today()).await.unwrap();
    store.engine_contacts().await.unwrap();
    let acme = account_id(&store, "A1").await;
    store.append_transitions(&[transition("k1", RECEIVED_AT, "account", acme, "segment_entered")]).await.unwrap();
    store.insert_health_override(acme, Some(10.0), "r", "csm", timestamp(RECEIVED_AT), None).await.unwrap();
    store.record_definitions("h", "s", timestamp(RECEIVED_AT)).await.unwrap();
    assert_eq!(moved(), NONE);
}

async fn the_report_counter_moves_after_every_write_a_report_reads(store: Store) {
    let mut reports = store.clone().report_inputs();
    let mut moved = move || {
        let out = reports.has_changed().unwrap();
        reports.borrow_and_update();
        out
    };
    import_accounts(&store, Source::Crm, ACCOUNTS).await;
    assert!(moved(), "accounts imported");
    import_subscriptions(&store, Source::Crm, "id,account_id,start_date,end_date,arr\nS1,A1,2026-01-01,2026-12-31,100")
        .await;
    assert!(moved(), "subscription lines imported");
    append_new(&store, "web", vec![track("t1", "u1", "Report Viewed")]).await;
    assert!(moved(), "an event");
    store.append("web", &[track("t1", "u1", "Report Viewed")]).await.unwrap();
    assert!(!moved(), "a duplicate stores nothing");

    store.doctor(today()).await.unwrap();
    store.events_after(0, 100).await.unwrap();
    store.subscription_lines().await.unwrap();
    store.paused_programs().await.unwrap();
    assert!(!moved(), "reads");

    // What the engine and the runner write, which the reports read.
    let acme = account_id(&store, "A1").await;
    store.append_transitions(&[transition("k1", RECEIVED_AT, "account", acme, "segment_entered")]).await.unwrap();
    assert!(moved(), "a transition");
    store.insert_health_override(acme, Some(10.0), "r", "csm", timestamp(RECEIVED_AT), None).await.unwrap();
    assert!(moved(), "a health override");
    store.record_definitions("h", "s", timestamp(RECEIVED_AT)).await.unwrap();
    assert!(moved(), "definitions");
    store.pause_program("onboarding", "ops", timestamp(RECEIVED_AT)).await.unwrap();
    assert!(moved(), "a pause");
}

async fn an_append_waits_for_an_open_import_so_events_become_visible_in_seq_order(store: Store) {
    // A reader keeps `seq` as its cursor, so no event may become visible after one with a
    // higher seq: appends take turns (SQLite's write lock; an advisory lock on PostgreSQL).
    let mut import = store.bulk_append().await.unwrap();
    import.append("import", &[track("t1", "u1", "Imported")]).await.unwrap();
    let http = tokio::spawn({
        let store = store.clone();
        async move { store.append("web", &[track("t2", "u1", "Live")]).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!http.is_finished(), "the append must wait for the open import");
    assert!(store.events_after(0, 10).await.unwrap().is_empty(), "nothing is visible before a commit");
    import.commit().await.unwrap();
    assert_eq!(http.await.unwrap().unwrap(), vec![Appended::New]);
    let names: Vec<Option<String>> = store.events_after(0, 10).await.unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(names, vec![Some("Imported".to_string()), Some("Live".to_string())]);
}

// =======================================================================================
// Programs: enrollments, due steps with leases, the send ledger, guard rails, in-app, tasks

use cairn_store::{
    After, DueStep, Enrollment, EnrollmentStatus, LedgerEntry, NewTask, OutboxMessage, StepRecord, SubjectKind,
    TaskPriority,
};
use jiff::{SignedDuration, Timestamp};

/// When the programs' stories start.
const T0: &str = "2026-03-02T09:00:00Z";

fn t0() -> Timestamp {
    timestamp(T0)
}

fn after(d: SignedDuration) -> Timestamp {
    t0() + d
}

fn mins(n: i64) -> SignedDuration {
    SignedDuration::from_mins(n)
}

fn hours(n: i64) -> SignedDuration {
    SignedDuration::from_hours(n)
}

fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

/// Enrolls a contact in a program under a trigger key that must be new.
async fn enroll_contact(store: &Store, program: &str, contact: i64, key: &str) -> Enrollment {
    store
        .enroll(program, SubjectKind::Contact, contact, key, t0(), false, None)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{program}/{contact}/{key} was already enrolled"))
}

/// What a worker records after sending `due` on `channel` at `at`.
fn ledger(due: &DueStep, channel: &str, outcome: &str, at: Timestamp) -> LedgerEntry {
    LedgerEntry {
        enrollment_id: due.enrollment_id,
        step_id: due.step_id.clone(),
        channel: channel.to_string(),
        outcome: outcome.to_string(),
        message_id: Some(format!("<{}.{}@cairn.test>", due.enrollment_id, due.step_id)),
        detail: "{}".to_string(),
        at,
    }
}

/// Claims exactly one due step at `now` for `owner`.
async fn claim_one(store: &Store, owner: &str, now: Timestamp) -> DueStep {
    let mut claimed = store.claim_due_steps(owner, now, mins(5), 10).await.unwrap();
    assert_eq!(claimed.len(), 1, "expected one due step at {now}, got {claimed:#?}");
    claimed.remove(0)
}

async fn nothing_due(store: &Store, now: Timestamp) {
    let claimed = store.claim_due_steps("checker", now, mins(1), 100).await.unwrap();
    assert!(claimed.is_empty(), "nothing should be claimable at {now}, got {claimed:#?}");
}

/// Runs one step for a subject at `at`: enrolled, scheduled, claimed and recorded.
async fn record_send(
    store: &Store,
    program: &str,
    subject: (SubjectKind, i64),
    channel: &str,
    outcome: &str,
    at: Timestamp,
    detail: &str,
) {
    let key = format!("{program}:{channel}:{at}");
    let e = store.enroll(program, subject.0, subject.1, &key, at, false, None).await.unwrap().unwrap();
    store.schedule_step(e.id, "send", at).await.unwrap();
    let due = claim_one(store, "worker", at).await;
    let entry = LedgerEntry { detail: detail.to_string(), ..ledger(&due, channel, outcome, at) };
    assert!(store.complete_step(&due, "worker", &entry, None).await.unwrap());
}

async fn enrolling_again_with_the_same_trigger_key_enrolls_once(store: Store) {
    let first = store
        .enroll("onboarding", SubjectKind::Contact, 7, "segment_entered:new_users:7", t0(), false, Some("A"))
        .await
        .unwrap()
        .expect("a first enrollment");
    assert_eq!(first.status, EnrollmentStatus::Active);
    assert_eq!(first.variant.as_deref(), Some("A"));
    assert_eq!(first.ended_at, None);
    let again = store
        .enroll("onboarding", SubjectKind::Contact, 7, "segment_entered:new_users:7", after(hours(1)), false, Some("B"))
        .await
        .unwrap();
    assert_eq!(again, None, "the same trigger (a restart, a second node) enrolls once");

    // A new trigger key is a re-entry; another subject, kind or program is another enrollment.
    let reentry = store
        .enroll("onboarding", SubjectKind::Contact, 7, "reentry:2026-04-01", after(days(30)), true, None)
        .await
        .unwrap();
    let reentry = reentry.expect("a new trigger key enrolls again");
    let key = "segment_entered:new_users:7";
    assert!(store.enroll("onboarding", SubjectKind::Contact, 8, key, t0(), false, None).await.unwrap().is_some());
    assert!(store.enroll("onboarding", SubjectKind::Account, 7, key, t0(), false, None).await.unwrap().is_some());
    assert!(store.enroll("renewal", SubjectKind::Contact, 7, key, t0(), false, None).await.unwrap().is_some());

    let last = store.last_enrollment("onboarding", SubjectKind::Contact, 7).await.unwrap().unwrap();
    assert_eq!(last, reentry);
    assert!(last.holdout, "the holdout flag is kept");
    assert_eq!(store.last_enrollment("onboarding", SubjectKind::Contact, 99).await.unwrap(), None);
    assert_eq!(store.active_enrollments("onboarding").await.unwrap().len(), 4);

    store.end_enrollment(first.id, EnrollmentStatus::GoalMet, after(days(3))).await.unwrap();
    store.end_enrollment(first.id, EnrollmentStatus::Exited, after(days(4))).await.unwrap();
    let ended = store.enrollment(first.id).await.unwrap().unwrap();
    assert_eq!(ended.status, EnrollmentStatus::GoalMet, "the first end is kept");
    assert_eq!(ended.ended_at, Some(after(days(3))));
    let active: Vec<i64> = store.active_enrollments("onboarding").await.unwrap().iter().map(|e| e.id).collect();
    assert!(!active.contains(&first.id) && active.len() == 3, "{active:?}");
    assert!(store.end_enrollment(reentry.id, EnrollmentStatus::Active, t0()).await.is_err());
}

async fn a_claimed_step_is_leased_until_its_lease_expires_and_then_claimed_again(store: Store) {
    let e = enroll_contact(&store, "onboarding", 7, "k").await;
    store.schedule_step(e.id, "welcome", t0()).await.unwrap();
    store.schedule_step(e.id, "welcome", after(hours(5))).await.unwrap(); // re-planned after a restart: no change
    store.schedule_step(e.id, "nudge", after(days(1))).await.unwrap();
    assert!(store.schedule_step(9_999, "welcome", t0()).await.is_err(), "no such enrollment");

    nothing_due(&store, after(mins(-1))).await;
    assert_eq!(store.next_due_at().await.unwrap(), Some(t0()));

    let claimed = store.claim_due_steps("node-a", t0(), mins(5), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let first = &claimed[0];
    assert_eq!(
        (first.step_id.as_str(), first.attempt, first.due_at, first.program_id.as_str()),
        ("welcome", 0, t0(), "onboarding")
    );
    assert_eq!((first.subject_kind, first.subject_id, first.enrollment_id), (SubjectKind::Contact, 7, e.id));
    assert_eq!((first.lease_owner.as_deref(), first.lease_until), (Some("node-a"), Some(after(mins(5)))));

    // Leased: nobody else gets it until the lease runs out (exactly at its end).
    assert!(store.claim_due_steps("node-b", after(mins(4)), mins(5), 10).await.unwrap().is_empty());
    assert_eq!(store.next_due_at().await.unwrap(), Some(after(mins(5))), "claimable again when the lease ends");
    let reclaimed = claim_one(&store, "node-b", after(mins(5))).await;
    assert_eq!((reclaimed.id, reclaimed.lease_owner.as_deref()), (first.id, Some("node-b")));

    // node-a lost the lease: it cannot record the step; node-b can, once.
    let entry = ledger(first, "email", "sent", after(mins(6)));
    assert!(!store.complete_step(first, "node-a", &entry, None).await.unwrap());
    assert_eq!(store.ledger_entry(e.id, "welcome").await.unwrap(), None);
    assert!(store.complete_step(&reclaimed, "node-b", &entry, None).await.unwrap());
    assert_eq!(store.ledger_entry(e.id, "welcome").await.unwrap(), Some(entry.clone()));
    assert!(!store.complete_step(&reclaimed, "node-b", &entry, None).await.unwrap(), "recorded once");

    nothing_due(&store, after(hours(1))).await;
    assert_eq!(store.next_due_at().await.unwrap(), Some(after(days(1))));
    let nudge = claim_one(&store, "node-a", after(days(1))).await;
    assert_eq!(nudge.step_id, "nudge");
    let wrong = ledger(first, "email", "sent", after(days(1)));
    assert!(store.complete_step(&nudge, "node-a", &wrong, None).await.is_err(), "an entry for another step");
    assert!(
        store.complete_step(&nudge, "node-a", &ledger(&nudge, "email", "sent", after(days(1))), None).await.unwrap()
    );

    // Oldest due first, at most `limit`.
    for (step, h) in [("c", 3), ("a", 1), ("b", 2)] {
        store.schedule_step(e.id, step, after(days(2) + hours(h))).await.unwrap();
    }
    let two = store.claim_due_steps("node-a", after(days(3)), mins(5), 2).await.unwrap();
    assert_eq!(two.iter().map(|d| d.step_id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert!(store.claim_due_steps("node-a", after(days(3)), SignedDuration::ZERO, 2).await.is_err());
    assert!(store.claim_due_steps("node-a", after(days(3)), mins(5), 0).await.unwrap().is_empty());
}

async fn ending_an_enrollment_cancels_its_pending_steps(store: Store) {
    let e = enroll_contact(&store, "trial", 7, "k").await;
    store.schedule_step(e.id, "s1", t0()).await.unwrap();
    store.schedule_step(e.id, "s2", t0()).await.unwrap();
    store.schedule_step(e.id, "s3", after(days(2))).await.unwrap();
    let mut claimed = store.claim_due_steps("node-a", t0(), mins(10), 1).await.unwrap();
    let s1 = claimed.remove(0);

    store.end_enrollment(e.id, EnrollmentStatus::GoalMet, after(mins(1))).await.unwrap();
    nothing_due(&store, after(days(3))).await;
    // The step already in a worker's hands is finished and recorded by that worker.
    assert!(store.complete_step(&s1, "node-a", &ledger(&s1, "email", "sent", after(mins(2))), None).await.unwrap());
    store.schedule_step(e.id, "s4", after(days(3))).await.unwrap();
    let attempts: Vec<(String, String)> =
        store.step_attempts(e.id).await.unwrap().into_iter().map(|a| (a.step_id, a.status)).collect();
    let expected = [("s1", "done"), ("s2", "cancelled"), ("s3", "cancelled")];
    assert_eq!(attempts, expected.map(|(s, st)| (s.to_string(), st.to_string())), "nothing scheduled after the end");
    assert_eq!(store.next_due_at().await.unwrap(), None);
}

async fn a_step_is_recorded_once_when_two_owners_race_after_a_lease_expiry(store: Store) {
    let mut pairs = Vec::new();
    for contact in 0..20 {
        let e = enroll_contact(&store, "onboarding", contact, "k").await;
        store.schedule_step(e.id, "welcome", t0()).await.unwrap();
    }
    let stale = store.claim_due_steps("node-a", t0(), mins(1), 100).await.unwrap();
    let fresh = store.claim_due_steps("node-b", after(mins(2)), mins(5), 100).await.unwrap();
    assert_eq!((stale.len(), fresh.len()), (20, 20), "every expired lease is claimed again");
    for (a, b) in stale.into_iter().zip(fresh) {
        assert_eq!(a.id, b.id);
        pairs.push((a, b));
    }
    // Both owners finish their send at the same moment and record it.
    let mut races = Vec::new();
    for (a, b) in pairs {
        for (due, owner) in [(a, "node-a"), (b, "node-b")] {
            let store = store.clone();
            races.push(tokio::spawn(async move {
                let entry = ledger(&due, "email", "sent", after(mins(3)));
                (due.enrollment_id, owner, store.complete_step(&due, owner, &entry, None).await.unwrap())
            }));
        }
    }
    let mut winners: HashMap<i64, Vec<&str>> = HashMap::new();
    for race in races {
        let (enrollment, owner, recorded) = race.await.unwrap();
        if recorded {
            winners.entry(enrollment).or_default().push(owner);
        }
    }
    assert_eq!(winners.len(), 20, "every step is recorded");
    assert!(winners.values().all(|w| w == &["node-b"]), "once, by the lease holder: {winners:?}");
    for enrollment in winners.keys() {
        assert_eq!(store.ledger_for_enrollment(*enrollment).await.unwrap().len(), 1);
    }
}

async fn an_outbox_send_is_stored_exactly_once(store: Store) {
    let e = enroll_contact(&store, "onboarding", 7, "k").await;
    store.schedule_step(e.id, "welcome", t0()).await.unwrap();
    store.schedule_step(e.id, "tips", after(mins(1))).await.unwrap();
    let welcome = claim_one(&store, "node-a", t0()).await;
    let email = OutboxMessage {
        message_id: "<onboarding.1.welcome@cairn.test>".into(),
        to: "ada@acme.com".into(),
        subject: "Welcome to Acme".into(),
        html: "<p>Hi Ada</p>".into(),
        text: "Hi Ada".into(),
        headers: r#"{"List-Unsubscribe":"<https://cairn.test/u/abc>"}"#.into(),
        at: t0(),
    };
    let entry = LedgerEntry { message_id: Some(email.message_id.clone()), ..ledger(&welcome, "email", "sent", t0()) };
    assert!(store.complete_step_with_outbox(&welcome, "node-a", &entry, &email, None).await.unwrap());
    assert!(
        !store.complete_step_with_outbox(&welcome, "node-a", &entry, &email, None).await.unwrap(),
        "a resend is refused"
    );
    assert_eq!(store.outbox(10).await.unwrap(), vec![email.clone()]);

    // A message id already in the outbox for another step records nothing at all.
    let tips = claim_one(&store, "node-a", after(mins(1))).await;
    let tips_entry = ledger(&tips, "email", "sent", after(mins(1)));
    assert!(store.complete_step_with_outbox(&tips, "node-a", &tips_entry, &email, None).await.is_err());
    assert_eq!(store.ledger_entry(e.id, "tips").await.unwrap(), None);
    let tips_email =
        OutboxMessage { message_id: "<onboarding.1.tips@cairn.test>".into(), at: after(mins(1)), ..email.clone() };
    assert!(store.complete_step_with_outbox(&tips, "node-a", &tips_entry, &tips_email, None).await.unwrap());
    assert_eq!(store.outbox(10).await.unwrap(), vec![tips_email.clone(), email], "newest first");
    assert_eq!(store.outbox(1).await.unwrap(), vec![tips_email]);
    assert_eq!(store.ledger_for_enrollment(e.id).await.unwrap().len(), 2);
}

async fn a_transient_failure_is_retried_with_the_attempt_counted(store: Store) {
    let e = enroll_contact(&store, "alerts", 7, "k").await;
    store.schedule_step(e.id, "webhook", t0()).await.unwrap();
    let first = claim_one(&store, "node-a", t0()).await;
    store.retry_step(&first, "node-a", after(mins(1)), "HTTP 503").await.unwrap();
    nothing_due(&store, after(SignedDuration::from_secs(30))).await;

    let second = claim_one(&store, "node-b", after(mins(1))).await;
    assert_eq!((second.attempt, second.step_id.as_str()), (1, "webhook"));
    store.retry_step(&first, "node-a", after(mins(2)), "stale").await.unwrap(); // not pending any more: no effect
    store.retry_step(&second, "node-b", after(mins(5)), "timeout after 10s").await.unwrap();
    nothing_due(&store, after(mins(4))).await;
    let third = claim_one(&store, "node-a", after(mins(5))).await;
    assert_eq!(third.attempt, 2);
    assert!(
        store.complete_step(&third, "node-a", &ledger(&third, "webhook", "sent", after(mins(5))), None).await.unwrap()
    );

    let attempts: Vec<(u32, String, Option<String>)> =
        store.step_attempts(e.id).await.unwrap().into_iter().map(|a| (a.attempt, a.status, a.last_error)).collect();
    assert_eq!(
        attempts,
        vec![
            (0, "retried".to_string(), Some("HTTP 503".to_string())),
            (1, "retried".to_string(), Some("timeout after 10s".to_string())),
            (2, "done".to_string(), None),
        ]
    );
    store.schedule_step(e.id, "webhook", after(hours(1))).await.unwrap();
    nothing_due(&store, after(days(1))).await;
}

async fn a_permanent_failure_ends_in_the_dead_letters_with_its_reason(store: Store) {
    let e = enroll_contact(&store, "onboarding", 7, "k").await;
    store.schedule_step(e.id, "welcome", t0()).await.unwrap();
    let first = claim_one(&store, "node-a", t0()).await;
    store.retry_step(&first, "node-a", after(mins(1)), "421 try later").await.unwrap();
    let second = claim_one(&store, "node-a", after(mins(1))).await;
    // A node that lost the lease cannot dead-letter the step.
    let taken = store.claim_due_steps("node-b", after(mins(10)), mins(5), 10).await.unwrap();
    assert_eq!(taken.len(), 1);
    store.dead_letter(&second, "node-a", "lost lease", after(mins(10))).await.unwrap();
    assert!(store.dead_letters(10).await.unwrap().is_empty());

    store.dead_letter(&taken[0], "node-b", "550 5.1.1 no such user", after(mins(11))).await.unwrap();
    let dead = store.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    let d = &dead[0];
    assert_eq!((d.enrollment_id, d.program_id.as_str(), d.step_id.as_str()), (e.id, "onboarding", "welcome"));
    assert_eq!((d.subject_kind, d.subject_id, d.attempt, d.due_step_id), (SubjectKind::Contact, 7, 1, second.id));
    assert_eq!((d.reason.as_str(), d.at), ("550 5.1.1 no such user", after(mins(11))));
    nothing_due(&store, after(days(1))).await;
    assert_eq!(store.ledger_entry(e.id, "welcome").await.unwrap(), None, "nothing was sent");
    let last = store.step_attempts(e.id).await.unwrap().pop().unwrap();
    assert_eq!((last.status.as_str(), last.last_error.as_deref()), ("dead", Some("550 5.1.1 no such user")));
}

async fn frequency_caps_count_sends_at_or_after_the_window_start_across_programs(store: Store) {
    let ada = (SubjectKind::Contact, 7);
    record_send(&store, "onboarding", ada, "email", "sent", t0(), "{}").await;
    record_send(&store, "adoption", ada, "email", "sent", after(days(1)), "{}").await;
    record_send(&store, "adoption", ada, "inapp", "sent", after(days(2)), "{}").await;
    record_send(&store, "renewal", ada, "email", "skipped_cap", after(days(2)), "{}").await;
    record_send(&store, "onboarding", (SubjectKind::Contact, 8), "email", "sent", after(days(1)), "{}").await;
    // An account's program sends to one of its contacts, named in the detail.
    record_send(&store, "qbr", (SubjectKind::Account, 3), "email", "sent", after(days(3)), r#"{"contact_id":7}"#).await;
    record_send(&store, "qbr", (SubjectKind::Account, 4), "email", "sent", after(days(3)), "{}").await;

    let ms = SignedDuration::from_millis(1);
    let sends = |since: Timestamp| {
        let store = store.clone();
        async move { store.sends_since(7, "email", since).await.unwrap() }
    };
    assert_eq!(sends(after(mins(-1))).await, 3);
    assert_eq!(sends(t0()).await, 3, "a send exactly at the window's start counts");
    assert_eq!(sends(t0() + ms).await, 2);
    assert_eq!(sends(after(days(1))).await, 2);
    assert_eq!(sends(after(days(1)) + ms).await, 1, "skipped sends do not count");
    assert_eq!(sends(after(days(3))).await, 1);
    assert_eq!(sends(after(days(3)) + ms).await, 0);
    assert_eq!(store.sends_since(7, "inapp", t0()).await.unwrap(), 1);
    assert_eq!(store.sends_since(8, "email", t0()).await.unwrap(), 1);
    assert_eq!(store.sends_since(9, "email", t0()).await.unwrap(), 0);
}

async fn consent_keeps_its_history_and_the_latest_change_wins(store: Store) {
    assert_eq!(store.consent(7, "newsletter").await.unwrap(), None, "never said");
    store.set_consent(7, "newsletter", true, "import", t0()).await.unwrap();
    assert_eq!(store.consent(7, "newsletter").await.unwrap(), Some(true));
    store.set_consent(7, "newsletter", false, "unsubscribe_link", after(days(1))).await.unwrap();
    assert_eq!(store.consent(7, "newsletter").await.unwrap(), Some(false));
    // A late import of an older opt-in does not undo the newer unsubscribe.
    store.set_consent(7, "newsletter", true, "import", after(hours(12))).await.unwrap();
    assert_eq!(store.consent(7, "newsletter").await.unwrap(), Some(false));
    // At the same instant, the one recorded later wins.
    store.set_consent(7, "newsletter", true, "api", after(days(1))).await.unwrap();
    assert_eq!(store.consent(7, "newsletter").await.unwrap(), Some(true));

    assert_eq!(store.consent(7, "product_updates").await.unwrap(), None, "per topic");
    assert_eq!(store.consent(8, "newsletter").await.unwrap(), None, "per contact");
    let history: Vec<(bool, String, Timestamp)> =
        store.consent_history(7).await.unwrap().into_iter().map(|c| (c.subscribed, c.source, c.at)).collect();
    assert_eq!(
        history,
        vec![
            (true, "import".to_string(), t0()),
            (true, "import".to_string(), after(hours(12))),
            (false, "unsubscribe_link".to_string(), after(days(1))),
            (true, "api".to_string(), after(days(1))),
        ]
    );
}

async fn hard_bounced_addresses_are_suppressed_whatever_their_case(store: Store) {
    assert!(!store.is_suppressed("ada@acme.com").await.unwrap());
    store.suppress_address(" Ada@Acme.com ", "hard_bounce", t0()).await.unwrap();
    assert!(store.is_suppressed("ada@acme.com").await.unwrap());
    assert!(store.is_suppressed("ADA@ACME.COM").await.unwrap());
    assert!(!store.is_suppressed("bob@acme.com").await.unwrap());
    store.suppress_address("ada@acme.com", "complaint", after(days(1))).await.unwrap();
    assert!(store.is_suppressed("ada@acme.com").await.unwrap());
    assert!(store.suppress_address("  ", "hard_bounce", t0()).await.is_err());
}

async fn a_round_reads_consent_suppressions_sends_and_enrollments_for_many_at_once(store: Store) {
    store.set_consent(7, "news", false, "unsubscribe_link", t0()).await.unwrap();
    store.set_consent(7, "all", true, "import", t0()).await.unwrap();
    store.set_consent(8, "news", false, "unsubscribe_link", t0()).await.unwrap();
    store.set_consent(8, "news", true, "api", after(hours(1))).await.unwrap();
    store.set_consent(9, "all", false, "unsubscribe_link", after(hours(2))).await.unwrap();
    let unsubscribed = store.unsubscribed_topics(&[7, 8, 9, 10]).await.unwrap();
    let mut got: Vec<(i64, Vec<String>)> =
        unsubscribed.into_iter().map(|(c, topics)| (c, topics.into_iter().collect())).collect();
    got.sort();
    assert_eq!(got, vec![(7, vec!["news".to_string()]), (9, vec!["all".to_string()])], "8 subscribed again");
    assert_eq!(store.unsubscribed_from(9, &["news", "all"]).await.unwrap().as_deref(), Some("all"));
    assert_eq!(store.unsubscribed_from(8, &["news", "all"]).await.unwrap(), None);

    store.suppress_address("Ada@Acme.com", "hard_bounce", t0()).await.unwrap();
    let suppressed = store.suppressed_among(&["ADA@acme.com ", "bob@acme.com"]).await.unwrap();
    assert_eq!(suppressed.into_iter().collect::<Vec<_>>(), vec!["ada@acme.com".to_string()]);

    let ada = (SubjectKind::Contact, 7);
    record_send(&store, "onboarding", ada, "email", "sent", t0(), "{}").await;
    record_send(&store, "adoption", ada, "email", "sent", after(days(1)), "{}").await;
    record_send(&store, "adoption", (SubjectKind::Contact, 8), "email", "sent", after(days(2)), "{}").await;
    record_send(&store, "renewal", (SubjectKind::Contact, 8), "email", "skipped_cap", after(days(2)), "{}").await;
    let sent = store.sent_times_since_many(&[7, 8, 9], "email", after(hours(1))).await.unwrap();
    let mut got: Vec<(i64, Vec<Timestamp>)> = sent.into_iter().collect();
    got.sort();
    assert_eq!(got, vec![(7, vec![after(days(1))]), (8, vec![after(days(2))])], "in the window, sent only");

    let first = enroll_contact(&store, "tour", 11, "k1").await;
    store.end_enrollment(first.id, EnrollmentStatus::Completed, after(hours(1))).await.unwrap();
    let second = enroll_contact(&store, "tour", 11, "k2").await;
    let other = enroll_contact(&store, "tour", 12, "k1").await;
    let last = store.last_enrollments("tour", SubjectKind::Contact, &[11, 12, 13]).await.unwrap();
    assert_eq!(last.len(), 2);
    assert_eq!(last[&11].id, second.id, "the latest enrollment of 11");
    assert_eq!(last[&12].id, other.id);
    let ids: Vec<i64> = store.enrollments(&[other.id, first.id, 999_999]).await.unwrap().iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![first.id, other.id], "those that exist, by id");
}

async fn two_records_of_one_enrollment_in_a_batch_are_written_in_order(store: Store) {
    // Two pending steps of one enrollment (as after a takeover), and one of another.
    let e = enroll_contact(&store, "tour", 7, "k").await;
    let f = enroll_contact(&store, "tour", 8, "k").await;
    store.schedule_step(e.id, "a", t0()).await.unwrap();
    store.schedule_step(e.id, "b", t0()).await.unwrap();
    store.schedule_step(f.id, "a", t0()).await.unwrap();
    let claimed = store.claim_due_steps("node-a", t0(), mins(5), 10).await.unwrap();
    assert_eq!(claimed.len(), 3);
    let step = |enrollment: i64, id: &str| {
        claimed.iter().find(|d| d.enrollment_id == enrollment && d.step_id == id).unwrap().clone()
    };
    let record = |due: DueStep, after: After| StepRecord {
        entry: ledger(&due, "email", "sent", t0()),
        due,
        outbox: None,
        after: Some(after),
        event: None,
    };
    let end = After::End(EnrollmentStatus::Completed);
    let next = After::Next { step_id: "c".to_string(), due_at: after(hours(1)) };
    // `a` ends e, which cancels `b`: written one by one, `b` is not recorded.
    let batch = vec![record(step(e.id, "a"), end.clone()), record(step(f.id, "a"), next), record(step(e.id, "b"), end)];
    assert_eq!(store.complete_steps("node-a", &batch).await.unwrap(), vec![true, true, false]);
    assert_eq!(store.enrollment(e.id).await.unwrap().unwrap().status, EnrollmentStatus::Completed);
    assert_eq!(store.ledger_for_enrollment(e.id).await.unwrap().len(), 1);
    let due = store.claim_due_steps("node-a", after(hours(1)), mins(5), 10).await.unwrap();
    assert_eq!(due.iter().map(|d| (d.enrollment_id, d.step_id.as_str())).collect::<Vec<_>>(), vec![(f.id, "c")]);
}

async fn a_contact_reads_and_marks_only_their_own_inapp_messages(store: Store) {
    let e1 = enroll_contact(&store, "onboarding", 7, "k").await;
    let e2 = enroll_contact(&store, "adoption", 7, "k").await;
    let e3 = enroll_contact(&store, "onboarding", 8, "k").await;
    let m1 = store.add_inapp_message(7, e1.id, "tip", "Try reports", "<p>Reports</p>", t0()).await.unwrap();
    let again =
        store.add_inapp_message(7, e1.id, "tip", "Try reports", "<p>Reports</p>", after(hours(1))).await.unwrap();
    assert_eq!(again, m1, "written again after a crash: the same message");
    let m2 =
        store.add_inapp_message(7, e2.id, "tip", "Invite your team", "<p>Invite</p>", after(hours(1))).await.unwrap();
    let m3 = store.add_inapp_message(8, e3.id, "tip", "Try reports", "<p>Reports</p>", t0()).await.unwrap();

    let ids = |list: Vec<cairn_store::InAppMessage>| list.into_iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(ids(store.inapp_messages(7, false).await.unwrap()), vec![m2, m1], "newest first");
    assert_eq!(ids(store.inapp_messages(8, false).await.unwrap()), vec![m3]);

    assert!(!store.mark_inapp(m1, 8, "dismissed", after(hours(2))).await.unwrap(), "not contact 8's message");
    assert!(!store.mark_inapp(9_999, 7, "seen", after(hours(2))).await.unwrap());
    assert!(store.mark_inapp(m1, 7, "seen", after(hours(2))).await.unwrap());
    assert!(store.mark_inapp(m1, 7, "seen", after(hours(3))).await.unwrap());
    assert!(store.mark_inapp(m2, 7, "clicked", after(hours(4))).await.unwrap());
    assert!(store.mark_inapp(m1, 7, "dismissed", after(hours(5))).await.unwrap());
    assert!(store.mark_inapp(m1, 7, "deleted", after(hours(5))).await.is_err());

    let open = store.inapp_messages(7, false).await.unwrap();
    assert_eq!(open.iter().map(|m| m.id).collect::<Vec<_>>(), vec![m2]);
    let m2_read = &open[0];
    assert_eq!((m2_read.title.as_str(), m2_read.body_html.as_str()), ("Invite your team", "<p>Invite</p>"));
    assert_eq!(
        (m2_read.seen_at, m2_read.clicked_at),
        (Some(after(hours(4))), Some(after(hours(4)))),
        "a click is seen too"
    );
    let all = store.inapp_messages(7, true).await.unwrap();
    let m1_read = all.iter().find(|m| m.id == m1).unwrap();
    assert_eq!(m1_read.seen_at, Some(after(hours(2))), "the first time seen is kept");
    assert_eq!((m1_read.clicked_at, m1_read.dismissed_at), (None, Some(after(hours(5)))));
    let m3_read = &store.inapp_messages(8, true).await.unwrap()[0];
    assert_eq!((m3_read.seen_at, m3_read.dismissed_at), (None, None), "contact 8's message untouched");
}

async fn tasks_are_made_once_per_step_and_listed_by_pool_assignee_and_load(store: Store) {
    let mut enrollments = Vec::new();
    for contact in 1..=4 {
        enrollments.push(enroll_contact(&store, "at_risk", contact, "k").await.id);
    }
    let task =
        |enrollment: i64, step: &str, assignee: &str, pool: Option<&str>, priority, due: Option<Timestamp>| NewTask {
            enrollment_id: enrollment,
            step_id: step.to_string(),
            account_id: Some(100 + enrollment),
            contact_id: None,
            title: format!("Call about {step}"),
            body: "Health dropped below 40.".to_string(),
            assignee: Some(assignee.to_string()),
            pool: pool.map(str::to_string),
            priority,
            due_at: due,
            created_at: t0(),
        };
    let (ana, bo) = ("ana@vendor.com", "bo@vendor.com");
    let pool = Some("cs-team");
    let t1 = store
        .create_task(&task(enrollments[0], "call", ana, pool, TaskPriority::High, Some(after(days(2)))))
        .await
        .unwrap();
    let again = task(enrollments[0], "call", bo, None, TaskPriority::Low, None);
    assert_eq!(store.create_task(&again).await.unwrap(), t1, "one task per (enrollment, step)");
    let t2 = store
        .create_task(&task(enrollments[1], "call", bo, pool, TaskPriority::Normal, Some(after(days(1)))))
        .await
        .unwrap();
    let t3 = store.create_task(&task(enrollments[2], "call", ana, None, TaskPriority::Urgent, None)).await.unwrap();
    let t4 = store
        .create_task(&task(enrollments[3], "review", ana, pool, TaskPriority::High, Some(after(days(1)))))
        .await
        .unwrap();

    let ids = |list: Vec<cairn_store::Task>| list.into_iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.open_tasks(None, Some("cs-team")).await.unwrap()),
        vec![t4, t1, t2],
        "by priority, then due date"
    );
    assert_eq!(ids(store.open_tasks(Some(ana), None).await.unwrap()), vec![t3, t4, t1]);
    assert_eq!(ids(store.open_tasks(Some(ana), Some("cs-team")).await.unwrap()), vec![t4, t1]);
    assert_eq!(store.open_tasks(None, None).await.unwrap().len(), 4);
    let first = store.task(t1).await.unwrap().unwrap();
    assert_eq!(
        (first.assignee.as_deref(), first.priority, first.title.as_str()),
        (Some(ana), TaskPriority::High, "Call about call")
    );

    let members = [ana, bo, "cy@vendor.com"].map(str::to_string);
    let load = |n: [u32; 3]| members.iter().cloned().zip(n).collect::<Vec<_>>();
    assert_eq!(store.open_task_counts(&members).await.unwrap(), load([3, 1, 0]));
    assert_eq!(store.open_task_counts(&[]).await.unwrap(), vec![]);
    assert_eq!(store.last_pool_assignee("cs-team").await.unwrap().as_deref(), Some(ana));
    assert_eq!(store.last_pool_assignee("sales").await.unwrap(), None);

    assert!(store.complete_task(t1, ana, after(days(1))).await.unwrap());
    assert!(!store.complete_task(t1, bo, after(days(2))).await.unwrap(), "done already");
    assert!(!store.complete_task(9_999, bo, after(days(2))).await.unwrap());
    let done = store.task(t1).await.unwrap().unwrap();
    assert_eq!((done.completed_by.as_deref(), done.completed_at), (Some(ana), Some(after(days(1)))));
    assert_eq!(store.open_task_counts(&members).await.unwrap(), load([2, 1, 0]));
    assert_eq!(ids(store.open_tasks(None, Some("cs-team")).await.unwrap()), vec![t4, t2]);

    // The backlog on a past instant: made by then, not completed by then.
    let open_at = |at: Timestamp| {
        let store = store.clone();
        async move { ids(store.tasks_open_at(at).await.unwrap()) }
    };
    assert_eq!(open_at(t0() - SignedDuration::from_millis(1)).await, Vec::<i64>::new());
    assert_eq!(open_at(t0()).await, vec![t1, t2, t3, t4]);
    assert_eq!(open_at(after(hours(23))).await, vec![t1, t2, t3, t4], "t1 was still open");
    assert_eq!(open_at(after(days(1))).await, vec![t2, t3, t4], "completed at that instant");
}

/// 100 enrollments × 5 steps, all due at [`T0`].
async fn five_hundred_due_steps(store: &Store) {
    for contact in 0..100 {
        let e = enroll_contact(store, "onboarding", contact, "k").await;
        for step in ["s1", "s2", "s3", "s4", "s5"] {
            store.schedule_step(e.id, step, t0()).await.unwrap();
        }
    }
}

async fn two_nodes_claiming_at_once_take_every_due_step_exactly_once(node_a: Store, node_b: Store) {
    five_hundred_due_steps(&node_a).await;
    // Four workers per node claim small batches until nothing is left, all at the same
    // instant: any step handed out twice would be two owners with overlapping leases.
    let mut workers = Vec::new();
    for (node, store) in [("a", &node_a), ("b", &node_b)] {
        for w in 0..4 {
            let store = store.clone();
            let owner = format!("node-{node}/{w}");
            workers.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = store.claim_due_steps(&owner, after(mins(1)), mins(10), 7).await.unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    assert!(batch.iter().all(|d| d.lease_owner.as_deref() == Some(owner.as_str())));
                    mine.extend(batch.into_iter().map(|d| d.id));
                    tokio::task::yield_now().await;
                }
            }));
        }
    }
    let mut claimed: Vec<i64> = Vec::new();
    let mut per_worker = Vec::new();
    for w in workers {
        let ids = w.await.unwrap();
        per_worker.push(ids.len());
        claimed.extend(ids);
    }
    let total = claimed.len();
    claimed.sort_unstable();
    claimed.dedup();
    assert_eq!((total, claimed.len()), (500, 500), "each step claimed exactly once (per worker: {per_worker:?})");
    nothing_due(&node_b, after(mins(2))).await;
}

async fn two_nodes_completing_the_same_steps_at_once_record_each_once(node_a: Store, node_b: Store) {
    for contact in 0..50 {
        let e = enroll_contact(&node_a, "onboarding", contact, "k").await;
        node_a.schedule_step(e.id, "welcome", t0()).await.unwrap();
    }
    // node-a claims, stalls past its lease; node-b takes the steps over. Both then finish.
    let stale = node_a.claim_due_steps("node-a", t0(), mins(1), 100).await.unwrap();
    let fresh = node_b.claim_due_steps("node-b", after(mins(2)), mins(5), 100).await.unwrap();
    assert_eq!((stale.len(), fresh.len()), (50, 50));
    let mut finishing = Vec::new();
    for (store, owner, steps) in [(node_a.clone(), "node-a", stale), (node_b.clone(), "node-b", fresh)] {
        finishing.push(tokio::spawn(async move {
            let mut recorded = 0;
            for due in steps {
                let entry = ledger(&due, "email", "sent", after(mins(3)));
                let outbox = OutboxMessage {
                    message_id: entry.message_id.clone().unwrap(),
                    to: format!("c{}@acme.com", due.subject_id),
                    subject: "Welcome".into(),
                    html: "<p>Hi</p>".into(),
                    text: "Hi".into(),
                    headers: "{}".into(),
                    at: after(mins(3)),
                };
                recorded +=
                    u32::from(store.complete_step_with_outbox(&due, owner, &entry, &outbox, None).await.unwrap());
            }
            recorded
        }));
    }
    let a = finishing.remove(0).await.unwrap();
    let b = finishing.remove(0).await.unwrap();
    assert_eq!((a, b), (0, 50), "the lease holder records every step, the stale node none");
    assert_eq!(node_a.outbox(1_000).await.unwrap().len(), 50, "one email per step");
}

// =======================================================================================
// Property: the snapshot depends on the facts, not on the order they arrived in.

mod order {
    use cairn_core::Source;
    use cairn_core::import::{AccountRow, ContactRow};
    use cairn_store::Store;
    use proptest::prelude::*;
    use proptest::sample::{select, subsequence};
    use proptest::test_runner::{Config, TestCaseError, TestRunner};

    use crate::common::{Backend, TestDb, account_rows, contact_rows};

    const DOMAINS: [&str; 3] = ["acme.com", "globex.com", "initech.io"];
    const EMAIL_DOMAINS: [&str; 4] = ["acme.com", "globex.com", "initech.io", "elsewhere.org"];

    #[derive(Debug, Clone)]
    struct AccountSpec {
        plan: Option<&'static str>,
        seats: Option<u16>,
        domains: Vec<&'static str>,
        region: Option<&'static str>,
    }

    #[derive(Debug, Clone)]
    struct ContactSpec {
        /// Index of its account (modulo the number of accounts), if it names one.
        account: Option<usize>,
        email: Option<(&'static str, &'static str)>,
        role: Option<&'static str>,
    }

    /// Accounts and contacts with unique external ids, and an interleaving of them.
    #[derive(Debug, Clone)]
    struct Dataset {
        accounts: Vec<AccountSpec>,
        contacts: Vec<ContactSpec>,
        /// A permutation of 0..accounts+contacts (accounts first, then contacts).
        shuffle: Vec<usize>,
    }

    fn dataset() -> impl Strategy<Value = Dataset> {
        let account = (
            proptest::option::of(select(vec!["team", "business"])),
            proptest::option::of(0u16..500),
            subsequence(DOMAINS.to_vec(), 0..=2),
            proptest::option::of(select(vec!["EMEA", "AMER"])),
        )
            .prop_map(|(plan, seats, domains, region)| AccountSpec { plan, seats, domains, region });
        let contact = (
            proptest::option::weighted(0.4, 0usize..8),
            proptest::option::of((select(vec!["ada", "bob", "cy"]), select(EMAIL_DOMAINS.to_vec()))),
            proptest::option::of(select(vec!["admin", "champion"])),
        )
            .prop_map(|(account, email, role)| ContactSpec { account, email, role });
        (proptest::collection::vec(account, 1..5), proptest::collection::vec(contact, 0..7)).prop_flat_map(
            |(accounts, contacts)| {
                let n = accounts.len() + contacts.len();
                (Just(accounts), Just(contacts), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
                    .prop_map(|(accounts, contacts, shuffle)| Dataset { accounts, contacts, shuffle })
            },
        )
    }

    impl Dataset {
        fn account_rows(&self) -> Vec<AccountRow> {
            let mut csv = String::from("external_id,name,plan,seats,domains,billing_id,region\n");
            for (i, a) in self.accounts.iter().enumerate() {
                let seats = a.seats.map(|s| s.to_string()).unwrap_or_default();
                csv += &format!(
                    "A{i},Company {i},{},{seats},{},cus_{i},{}\n",
                    a.plan.unwrap_or(""),
                    a.domains.join(";"),
                    a.region.unwrap_or("")
                );
            }
            account_rows(&csv)
        }

        fn account_of(&self, c: &ContactSpec) -> Option<usize> {
            c.account.map(|a| a % self.accounts.len())
        }

        fn contact_rows(&self) -> Vec<ContactRow> {
            let mut csv = String::from("external_id,account_external_id,email,name,role\n");
            for (j, c) in self.contacts.iter().enumerate() {
                let account = self.account_of(c).map(|a| format!("A{a}")).unwrap_or_default();
                let email = c.email.map(|(name, domain)| format!("{name}@{domain}")).unwrap_or_default();
                csv += &format!("C{j},{account},{email},Person {j},{}\n", c.role.unwrap_or(""));
            }
            contact_rows(&csv)
        }
    }

    fn ok<E: std::fmt::Debug>(results: Vec<Result<(), E>>) {
        assert!(results.iter().all(Result::is_ok), "rows rejected: {results:?}");
    }

    /// All accounts in one call, then all contacts in one call, in the generated order.
    async fn import_in_file_order(store: &Store, data: &Dataset) {
        ok(store.upsert_accounts(Source::Crm, &data.account_rows()).await.unwrap());
        ok(store.upsert_contacts(Source::Crm, &data.contact_rows()).await.unwrap());
    }

    /// Row by row in the shuffled order, except that a contact naming an account waits
    /// until that account has been imported.
    async fn import_row_by_row_shuffled(store: &Store, data: &Dataset) {
        let (accounts, contacts) = (data.account_rows(), data.contact_rows());
        let mut imported = vec![false; accounts.len()];
        let mut waiting: Vec<usize> = Vec::new();
        for &k in &data.shuffle {
            if k < accounts.len() {
                ok(store.upsert_accounts(Source::Crm, &accounts[k..=k]).await.unwrap());
                imported[k] = true;
            } else {
                waiting.push(k - accounts.len());
            }
            let (ready, still): (Vec<usize>, Vec<usize>) =
                waiting.into_iter().partition(|&j| data.account_of(&data.contacts[j]).is_none_or(|a| imported[a]));
            waiting = still;
            for j in ready {
                ok(store.upsert_contacts(Source::Crm, &contacts[j..=j]).await.unwrap());
            }
        }
        assert!(waiting.is_empty());
    }

    async fn check(backend: Backend, data: Dataset) -> Result<(), TestCaseError> {
        let (once, shuffled) = (TestDb::open(backend).await.unwrap(), TestDb::open(backend).await.unwrap());
        import_in_file_order(&once.store, &data).await;
        let first = once.store.snapshot().await.unwrap();
        import_in_file_order(&once.store, &data).await;
        let second = once.store.snapshot().await.unwrap();
        import_row_by_row_shuffled(&shuffled.store, &data).await;
        let other_order = shuffled.store.snapshot().await.unwrap();
        once.close().await;
        shuffled.close().await;
        prop_assert_eq!(&first, &second, "importing the same rows again changed the snapshot");
        prop_assert_eq!(&first, &other_order, "importing in another order gave another snapshot");
        Ok(())
    }

    pub fn import_order_does_not_change_the_snapshot(backend: Backend) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        // Fail once, here, if the database cannot be opened, rather than in every case.
        runtime.block_on(async { TestDb::open(backend).await.unwrap().close().await });
        let mut runner = TestRunner::new(Config { cases: 12, failure_persistence: None, ..Config::default() });
        let result = runner.run(&dataset(), |data| runtime.block_on(check(backend, data)));
        if let Err(e) = result {
            panic!("{e}");
        }
    }
}

use order::import_order_does_not_change_the_snapshot;

// =======================================================================================
// The runner's side (migration 0004)

async fn a_recorded_step_schedules_the_next_or_ends_the_enrollment_in_the_same_transaction(store: Store) {
    let e = enroll_contact(&store, "onboarding", 7, "k").await;
    store.schedule_step(e.id, "welcome", t0()).await.unwrap();
    let welcome = claim_one(&store, "node-a", t0()).await;
    assert_eq!(welcome.started_at, t0());
    let next = After::Next { step_id: "tips".into(), due_at: after(days(2)) };
    assert!(
        store.complete_step(&welcome, "node-a", &ledger(&welcome, "email", "sent", t0()), Some(&next)).await.unwrap()
    );
    // Recorded again (a crash before the answer): nothing new, no second `tips`.
    assert!(
        !store.complete_step(&welcome, "node-a", &ledger(&welcome, "email", "sent", t0()), Some(&next)).await.unwrap()
    );
    nothing_due(&store, after(days(2)) - mins(1)).await;
    let tips = claim_one(&store, "node-a", after(days(2))).await;
    assert_eq!((tips.step_id.as_str(), tips.attempt, tips.started_at), ("tips", 0, after(days(2))));
    let end = After::End(EnrollmentStatus::Completed);
    assert!(
        store
            .complete_step(&tips, "node-a", &ledger(&tips, "email", "sent", after(days(2))), Some(&end))
            .await
            .unwrap()
    );
    let ended = store.enrollment(e.id).await.unwrap().unwrap();
    assert_eq!((ended.status, ended.ended_at), (EnrollmentStatus::Completed, Some(after(days(2)))));
    // `active` is not an end.
    let e2 = enroll_contact(&store, "onboarding", 8, "k").await;
    store.schedule_step(e2.id, "welcome", t0()).await.unwrap();
    let w2 = claim_one(&store, "node-a", after(days(3))).await;
    let bad = After::End(EnrollmentStatus::Active);
    assert!(store.complete_step(&w2, "node-a", &ledger(&w2, "email", "sent", t0()), Some(&bad)).await.is_err());
    assert!(store.ledger_entry(e2.id, "welcome").await.unwrap().is_none(), "an error rolls the record back");
}

async fn a_deferred_step_keeps_its_start_and_a_woken_wait_is_due_now(store: Store) {
    let e = enroll_contact(&store, "nps", 7, "k").await;
    store.schedule_step(e.id, "wait_answer", t0()).await.unwrap();
    let wait = claim_one(&store, "node-a", t0()).await;
    assert!(
        !store.defer_step(&wait, "node-b", after(hours(1)), "not mine").await.unwrap(),
        "only the lease holder defers"
    );
    assert!(store.defer_step(&wait, "node-a", after(days(5)), "waiting for an answer").await.unwrap());
    nothing_due(&store, after(days(1))).await;
    let attempts = store.step_attempts(e.id).await.unwrap();
    assert_eq!(attempts.len(), 1, "a deferral is not a new attempt: {attempts:?}");
    assert_eq!(attempts[0].last_error.as_deref(), Some("waiting for an answer"));
    assert_eq!(store.wake_steps(e.id, &["other".into()], after(hours(2))).await.unwrap(), 0);
    assert_eq!(store.wake_steps(e.id, &["wait_answer".into()], after(hours(2))).await.unwrap(), 1);
    let woken = claim_one(&store, "node-b", after(hours(2))).await;
    assert_eq!((woken.due_at, woken.started_at, woken.attempt), (after(hours(2)), t0(), 0));
    // A retry keeps when the step started.
    store.retry_step(&woken, "node-b", after(hours(3)), "smtp 421").await.unwrap();
    let retried = claim_one(&store, "node-b", after(hours(3))).await;
    assert_eq!((retried.attempt, retried.started_at), (1, t0()));
}

async fn engagement_is_recorded_once_per_kind_and_goals_once(store: Store) {
    let e = enroll_contact(&store, "nps", 7, "k").await;
    assert!(store.record_engagement(e.id, "nps", "opened", after(mins(5)), "{}").await.unwrap());
    assert!(!store.record_engagement(e.id, "nps", "opened", after(mins(9)), "{}").await.unwrap(), "once per kind");
    assert!(store.record_engagement(e.id, "nps", "answered", after(mins(7)), r#"{"score":9}"#).await.unwrap());
    assert!(!store.record_engagement(9_999, "nps", "opened", t0(), "{}").await.unwrap(), "no such enrollment");
    let seen = store.engagements(e.id).await.unwrap();
    let kinds: Vec<(&str, &str, Timestamp)> =
        seen.iter().map(|x| (x.step_id.as_str(), x.kind.as_str(), x.at)).collect();
    assert_eq!(kinds, vec![("nps", "opened", after(mins(5))), ("nps", "answered", after(mins(7)))]);
    assert_eq!(seen[1].detail, r#"{"score":9}"#);

    assert_eq!(store.enrollments_to_measure("nps", t0()).await.unwrap().len(), 1);
    assert!(store.mark_goal_met(e.id, after(hours(1))).await.unwrap());
    assert!(!store.mark_goal_met(e.id, after(hours(2))).await.unwrap(), "the first time counts");
    assert_eq!(store.enrollment(e.id).await.unwrap().unwrap().goal_met_at, Some(after(hours(1))));
    assert!(store.enrollments_to_measure("nps", t0()).await.unwrap().is_empty());
    assert_eq!(store.program_enrollments("nps").await.unwrap().len(), 1);
}

async fn deferrals_engagement_and_goals_set_wise_agree_with_one_at_a_time(store: Store) {
    // Three waits claimed by node-a; a fourth step held by node-b.
    let mut waits = Vec::new();
    for contact in [7, 8, 9] {
        let e = enroll_contact(&store, "nps", contact, "k").await;
        store.schedule_step(e.id, "wait_answer", t0()).await.unwrap();
        waits.push(e);
    }
    let other = enroll_contact(&store, "nps", 10, "k").await;
    store.schedule_step(other.id, "wait_answer", t0()).await.unwrap();
    let mut claimed = store.claim_due_steps("node-a", t0(), mins(5), 3).await.unwrap();
    // node-b holds its step for the whole story (a short lease would hand it back).
    let theirs = store.claim_due_steps("node-b", t0(), hours(10), 10).await.unwrap().remove(0);
    assert_eq!(theirs.enrollment_id, other.id);
    claimed.sort_by_key(|d| d.enrollment_id);
    let deferrals: Vec<(DueStep, Timestamp, String)> = claimed
        .iter()
        .enumerate()
        .map(|(i, d)| (d.clone(), after(hours(i as i64 + 1)), format!("waiting {i}")))
        .chain([(theirs.clone(), after(hours(9)), "not mine".to_string())])
        .collect();
    assert_eq!(store.defer_steps("node-a", &deferrals).await.unwrap(), 3, "only the lease holder defers");
    assert_eq!(store.defer_steps("node-a", &[]).await.unwrap(), 0);
    nothing_due(&store, after(mins(59))).await;
    for (i, e) in waits.iter().enumerate() {
        let attempts = store.step_attempts(e.id).await.unwrap();
        assert_eq!(attempts.len(), 1, "a deferral is not a new attempt: {attempts:?}");
        assert_eq!(attempts[0].due_at, after(hours(i as i64 + 1)));
        assert_eq!(attempts[0].last_error.as_deref(), Some(format!("waiting {i}").as_str()));
    }
    let held = store.step_attempts(other.id).await.unwrap();
    assert_eq!((held[0].due_at, held[0].last_error.as_deref()), (t0(), None), "node-b's step is untouched");
    let first = claim_one(&store, "node-a", after(hours(1))).await;
    assert_eq!((first.enrollment_id, first.started_at), (waits[0].id, t0()));

    // Engagement of many enrollments: what one at a time gives, by enrollment.
    let (a, b, c) = (waits[0].id, waits[1].id, waits[2].id);
    store.record_engagement(a, "nps", "answered", after(mins(7)), r#"{"score":9}"#).await.unwrap();
    store.record_engagement(a, "nps", "opened", after(mins(5)), "{}").await.unwrap();
    store.record_engagement(b, "nps", "clicked", after(mins(3)), "{}").await.unwrap();
    let many = store.engagements_of(&[a, b, c, 9_999]).await.unwrap();
    assert_eq!(many.len(), 2, "enrollments without engagement are absent: {many:?}");
    assert_eq!(many[&a], store.engagements(a).await.unwrap());
    assert_eq!(many[&b], store.engagements(b).await.unwrap());
    assert!(store.engagements_of(&[]).await.unwrap().is_empty());

    // Goals met in one write: the first time counts, others are left alone.
    assert!(store.mark_goal_met(b, after(hours(1))).await.unwrap());
    assert_eq!(store.mark_goals_met(&[a, b], after(hours(2))).await.unwrap(), 1);
    assert_eq!(store.mark_goals_met(&[], after(hours(2))).await.unwrap(), 0);
    let goal = |id: i64| {
        let store = store.clone();
        async move { store.enrollment(id).await.unwrap().unwrap().goal_met_at }
    };
    assert_eq!((goal(a).await, goal(b).await, goal(c).await), (Some(after(hours(2))), Some(after(hours(1))), None));
    let open: Vec<i64> = store.enrollments_to_measure("nps", t0()).await.unwrap().iter().map(|e| e.id).collect();
    assert_eq!(open, vec![c, other.id], "by id, the goals not met yet");
}

async fn settings_are_shared_and_the_first_secret_stored_wins(store: Store) {
    assert_eq!(store.setting("link_secret").await.unwrap(), None);
    assert_eq!(store.setting_or_insert("link_secret", "first").await.unwrap(), "first");
    assert_eq!(
        store.setting_or_insert("link_secret", "second").await.unwrap(),
        "first",
        "a racing node gets the stored one"
    );
    store.put_setting("runner.transitions", "41").await.unwrap();
    store.put_setting("runner.transitions", "42").await.unwrap();
    assert_eq!(store.setting("runner.transitions").await.unwrap().as_deref(), Some("42"));
}

async fn custom_traits_set_by_a_program_are_read_back_and_signal_a_data_change(store: Store) {
    let all_ok = |r: Vec<Result<(), RowError>>| assert!(r.iter().all(Result::is_ok), "rows rejected: {r:?}");
    all_ok(store.upsert_accounts(Source::Crm, &account_rows(ACCOUNTS)).await.unwrap());
    let rows = contact_rows("external_id,account_external_id,email\nC1,A1,ada@acme.com");
    all_ok(store.upsert_contacts(Source::Crm, &rows).await.unwrap());
    let contact = store
        .engine_contacts()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.email.as_deref() == Some("ada@acme.com"))
        .unwrap();
    let account = contact.account_id.unwrap();
    let changes = store.data_changes();
    let before = *changes.borrow();
    assert!(
        store.set_custom_trait(SubjectKind::Account, account, "rescue_started_on", &json!("2026-03-01")).await.unwrap()
    );
    assert!(*changes.borrow() > before, "the engine must hear of it");
    assert!(
        store
            .set_custom_trait(SubjectKind::Contact, contact.id, "nps_surveyed_at", &json!("2026-03-01T10:00:00Z"))
            .await
            .unwrap()
    );
    assert!(!store.set_custom_trait(SubjectKind::Contact, 9_999, "x", &json!(1)).await.unwrap(), "no such contact");
    let today = jiff::civil::date(2026, 3, 1);
    let a = store.engine_accounts(today).await.unwrap().into_iter().find(|a| a.id == account).unwrap();
    assert_eq!(a.traits.get("rescue_started_on"), Some(&json!("2026-03-01")));
    assert_eq!(a.traits.get("region"), Some(&json!("EMEA")), "other traits stay");
    let c = store.engine_contacts().await.unwrap().into_iter().find(|c| c.id == contact.id).unwrap();
    assert_eq!(c.traits.get("nps_surveyed_at"), Some(&json!("2026-03-01T10:00:00Z")));
    // The internal alias names the contact as a userId.
    let alias = store.contact_alias(contact.id).await.unwrap();
    assert_eq!(alias, format!("cairn:contact:{}", contact.id));
    assert_eq!(store.contact_alias(contact.id).await.unwrap(), alias, "idempotent");
}

fn segment_transition(
    key: &str,
    at: &str,
    subject_kind: &str,
    subject_id: i64,
    kind: &str,
    segment: &str,
) -> cairn_store::NewTransition {
    cairn_store::NewTransition {
        detail: json!({ "type": kind, "segment": segment }).to_string(),
        ..transition(key, at, subject_kind, subject_id, kind)
    }
}

async fn segment_members_before_an_instant_are_rebuilt_from_entries_and_exits(store: Store) {
    import_accounts(&store, Source::Crm, ACCOUNTS).await;
    import_contacts(&store, Source::Crm, "external_id,account_external_id,email\nC1,A1,ada@acme.com").await;
    let (acme, globex) = (account_id(&store, "A1").await, account_id(&store, "A2").await);
    let ada = contact_id(&store, "ada@acme.com").await;
    store
        .append_transitions(&[
            // Acme: in at_risk from Jan 10, out Feb 1 at midnight, in again Feb 20.
            segment_transition("a1", "2026-01-10T09:00:00Z", "account", acme, "segment_entered", "at_risk"),
            segment_transition("a2", "2026-02-01T00:00:00Z", "account", acme, "segment_exited", "at_risk"),
            segment_transition("a3", "2026-02-20T00:00:00Z", "account", acme, "segment_entered", "at_risk"),
            // Globex: in at_risk from Jan 31; in at-risk (another id, `_` a LIKE wildcard) too.
            segment_transition("g1", "2026-01-31T23:59:59Z", "account", globex, "segment_entered", "at_risk"),
            segment_transition("g2", "2026-01-05T00:00:00Z", "account", globex, "segment_entered", "atXrisk"),
            // A contact in a contact segment of the same id is not an account member.
            segment_transition("c1", "2026-01-01T00:00:00Z", "contact", ada, "segment_entered", "at_risk"),
            segment_transition("c2", "2026-01-01T00:00:00Z", "contact", ada, "segment_entered", "admins"),
            transition("m1", "2026-01-02T00:00:00Z", "account", acme, "milestone_achieved"),
        ])
        .await
        .unwrap();
    let members = |at: &'static str, kind| {
        let store = store.clone();
        async move { store.segment_members_before("at_risk", kind, timestamp(at)).await.unwrap() }
    };
    let account = cairn_store::SubjectKind::Account;
    assert_eq!(
        members("2026-01-10T09:00:00Z", account).await,
        Vec::<i64>::new(),
        "an entry at the instant is not before it"
    );
    assert_eq!(members("2026-01-10T09:00:00.001Z", account).await, vec![acme]);
    let mut both = vec![acme, globex];
    both.sort();
    assert_eq!(members("2026-02-01T00:00:00Z", account).await, both, "Acme's exit at midnight comes after the instant");
    assert_eq!(members("2026-02-01T00:00:01Z", account).await, vec![globex]);
    assert_eq!(members("2026-03-01T00:00:00Z", account).await, both);
    assert_eq!(members("2026-03-01T00:00:00Z", cairn_store::SubjectKind::Contact).await, vec![ada]);
    assert_eq!(
        store.segment_members_before("atXrisk", account, timestamp("2026-03-01T00:00:00Z")).await.unwrap(),
        vec![globex]
    );

    let seen: Vec<(String, &str)> =
        store.segments_in_transitions().await.unwrap().into_iter().map(|(s, k)| (s, k.as_str())).collect();
    assert_eq!(
        seen,
        vec![
            ("admins".to_string(), "contact"),
            ("atXrisk".to_string(), "account"),
            ("at_risk".to_string(), "account"),
            ("at_risk".to_string(), "contact"),
        ]
    );
}

async fn events_named_are_read_with_their_account_oldest_first(store: Store) {
    let track = |id: &str, event: &str, ts: &str, ticket: &str| {
        msg(json!({ "type": "track", "messageId": id, "userId": "u1", "event": event, "timestamp": ts,
                    "properties": { "ticket_id": ticket }, "context": { "groupId": "acme-prod" } }))
    };
    append_new(
        &store,
        "web",
        vec![
            msg(json!({ "type": "group", "messageId": "g1", "userId": "u1", "groupId": "acme-prod", "traits": { "name": "Acme" } })),
            track("t1", "ticket_closed", "2026-02-10T10:00:00Z", "T-1"),
            track("t2", "ticket_opened", "2026-02-01T10:00:00Z", "T-1"),
            track("t3", "page_viewed", "2026-02-02T10:00:00Z", ""),
            track("t4", "ticket_opened", "2026-02-27T10:00:00Z", "T-2"),
        ],
    )
    .await;
    let read = |before: &'static str| {
        let store = store.clone();
        async move {
            store
                .events_named(&["ticket_opened", "ticket_closed"], timestamp(before))
                .await
                .unwrap()
                .into_iter()
                .map(|e| {
                    (
                        e.name.unwrap_or_default(),
                        e.ts.to_string(),
                        e.account_id.is_some(),
                        e.properties.unwrap_or_default(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let all = read("2026-03-01T00:00:00Z").await;
    let names: Vec<(&str, &str)> = all.iter().map(|(n, ts, _, _)| (n.as_str(), ts.as_str())).collect();
    assert_eq!(
        names,
        vec![
            ("ticket_opened", "2026-02-01T10:00:00Z"),
            ("ticket_closed", "2026-02-10T10:00:00Z"),
            ("ticket_opened", "2026-02-27T10:00:00Z"),
        ]
    );
    assert!(all.iter().all(|e| e.2), "every one is bound to Acme: {all:?}");
    assert!(all[0].3.contains("\"T-1\""), "{all:?}");
    assert_eq!(read("2026-02-10T10:00:00Z").await.len(), 1, "before is exclusive");
    assert!(store.events_named(&[], timestamp("2026-03-01T00:00:00Z")).await.unwrap().is_empty());
    let many = ["x"; 17];
    assert!(store.events_named(&many, timestamp("2026-03-01T00:00:00Z")).await.is_err());
}

async fn program_activity_reads_a_range_of_enrollments_with_accounts_sends_and_engagements(store: Store) {
    let all_ok = |r: Vec<Result<(), RowError>>| assert!(r.iter().all(Result::is_ok), "rows rejected: {r:?}");
    all_ok(store.upsert_accounts(Source::Crm, &account_rows(ACCOUNTS)).await.unwrap());
    all_ok(
        store
            .upsert_contacts(Source::Crm, &contact_rows("external_id,account_external_id,email\nC1,A1,ada@acme.com"))
            .await
            .unwrap(),
    );
    let ada = store.engine_contacts().await.unwrap().into_iter().find(|c| c.email.is_some()).unwrap();
    let acme = ada.account_id.unwrap();
    // Before the range, in it (a contact with an account, an account, a held-out contact
    // that is nobody's), and at its end (excluded).
    let early =
        store.enroll("tour", SubjectKind::Contact, ada.id, "a", after(mins(-1)), false, None).await.unwrap().unwrap();
    let treated = store.enroll("tour", SubjectKind::Contact, ada.id, "b", t0(), false, None).await.unwrap().unwrap();
    let account =
        store.enroll("qbr", SubjectKind::Account, acme, "c", after(hours(1)), false, None).await.unwrap().unwrap();
    let held =
        store.enroll("tour", SubjectKind::Contact, 9_999, "d", after(hours(2)), true, None).await.unwrap().unwrap();
    store.enroll("tour", SubjectKind::Contact, ada.id, "e", after(days(1)), false, None).await.unwrap().unwrap();
    for (e, step, detail) in [
        (early.id, "hello", "{}".to_string()),
        (treated.id, "hello", r#"{"variant":"hello_b"}"#.to_string()),
        (account.id, "invite", format!(r#"{{"contact_id":{}}}"#, ada.id)),
    ] {
        let at = after(hours(3));
        store.schedule_step(e, step, at).await.unwrap();
        let due = claim_one(&store, "worker", at).await;
        let entry = LedgerEntry { detail, ..ledger(&due, "email", "sent", at) };
        assert!(store.complete_step(&due, "worker", &entry, None).await.unwrap());
    }
    for (e, kind) in [(early.id, "opened"), (treated.id, "opened"), (treated.id, "clicked")] {
        assert!(store.record_engagement(e, "hello", kind, after(hours(4)), "{}").await.unwrap());
    }
    store.mark_goal_met(treated.id, after(hours(5))).await.unwrap();

    let got = store.program_activity(t0(), after(days(1))).await.unwrap();
    let enrolled: Vec<(i64, Option<i64>, bool)> =
        got.enrollments.iter().map(|m| (m.enrollment.id, m.account_id, m.enrollment.holdout)).collect();
    assert_eq!(enrolled, vec![(treated.id, Some(acme), false), (account.id, Some(acme), false), (held.id, None, true)]);
    assert_eq!(got.enrollments[0].enrollment.goal_met_at, Some(after(hours(5))));
    let sends: Vec<(i64, &str, Option<i64>, &str)> = got
        .sends
        .iter()
        .map(|s| (s.entry.enrollment_id, s.entry.step_id.as_str(), s.contact_id, s.entry.detail.as_str()))
        .collect();
    let invite = format!(r#"{{"contact_id":{}}}"#, ada.id);
    assert_eq!(
        sends,
        vec![
            (treated.id, "hello", Some(ada.id), r#"{"variant":"hello_b"}"#),
            (account.id, "invite", Some(ada.id), invite.as_str())
        ]
    );
    let kinds: Vec<(i64, &str)> = got.engagements.iter().map(|g| (g.enrollment_id, g.kind.as_str())).collect();
    assert_eq!(kinds, vec![(treated.id, "clicked"), (treated.id, "opened")]);
    assert_eq!(store.program_activity(after(days(2)), after(days(3))).await.unwrap(), Default::default());
}

// =======================================================================================
// Health snapshots (migration 0007)

fn snapshot(account_id: i64, day: &str, score: f64, band: &str) -> cairn_store::HealthSnapshotRecord {
    cairn_store::HealthSnapshotRecord {
        account_id,
        day: date(day),
        model: "default".into(),
        score: Some(score),
        band: Some(band.into()),
        pillars: vec![("adoption".into(), Some(score)), ("sentiment".into(), None)],
        measures: vec![("adoption".into(), "reports".into(), Some(score)), ("sentiment".into(), "nps".into(), None)],
    }
}

async fn health_snapshots_are_written_once_and_a_changed_day_replaces_its_row(store: Store) {
    assert_eq!(store.health_snapshots_through().await.unwrap(), None);
    let rows = [snapshot(1, "2026-01-03", 0.0, "red"), snapshot(1, "2026-02-01", 80.0, "green")];
    assert_eq!(store.write_health_snapshots(&rows, Some(date("2026-02-10"))).await.unwrap(), 2);
    // A restart recomputing the same history writes nothing.
    assert_eq!(store.write_health_snapshots(&rows, Some(date("2026-02-10"))).await.unwrap(), 0);
    // The mark only moves forward (a replay passes earlier days again).
    assert_eq!(store.write_health_snapshots(&[], Some(date("2026-01-05"))).await.unwrap(), 0);
    assert_eq!(store.health_snapshots_through().await.unwrap(), Some(date("2026-02-10")));
    // Scored again later the same day: the day's row is replaced.
    let again = snapshot(1, "2026-02-01", 70.0, "green");
    assert_eq!(store.write_health_snapshots(std::slice::from_ref(&again), None).await.unwrap(), 1);
    let read = store.account_health_snapshots(1, date("2026-01-01"), date("2026-12-31")).await.unwrap();
    assert_eq!(read, vec![rows[0].clone(), again]);
    // A score that is not a number is refused, not stored as NULL.
    let bad = cairn_store::HealthSnapshotRecord { score: Some(f64::NAN), ..snapshot(2, "2026-01-01", 0.0, "red") };
    assert!(store.write_health_snapshots(&[bad], None).await.unwrap_err().to_string().contains("not a number"));
    // A change of definitions forgets them all.
    store.clear_health_snapshots().await.unwrap();
    assert_eq!(store.health_snapshots_through().await.unwrap(), None);
    assert!(store.account_health_snapshots(1, date("2026-01-01"), date("2026-12-31")).await.unwrap().is_empty());
}

async fn health_snapshots_are_read_as_runs_over_a_range_and_on_given_days(store: Store) {
    let rows = [
        snapshot(1, "2026-01-03", 0.0, "red"),
        snapshot(1, "2026-01-05", 10.0, "red"),
        snapshot(1, "2026-02-01", 80.0, "green"),
        snapshot(2, "2026-01-20", 50.0, "yellow"),
    ];
    store.write_health_snapshots(&rows, Some(date("2026-02-28"))).await.unwrap();
    // The range starts inside the 2026-01-05 run: that run comes first, then the later ones.
    let days = |v: Vec<cairn_store::HealthSnapshotRecord>| v.iter().map(|s| s.day.to_string()).collect::<Vec<_>>();
    let range = store.account_health_snapshots(1, date("2026-01-10"), date("2026-02-01")).await.unwrap();
    assert_eq!(days(range), ["2026-01-05", "2026-02-01"]);
    let range = store.account_health_snapshots(1, date("2026-01-05"), date("2026-01-31")).await.unwrap();
    assert_eq!(days(range), ["2026-01-05"]);
    // Before the first run there is nothing in force.
    let range = store.account_health_snapshots(1, date("2025-12-01"), date("2026-01-04")).await.unwrap();
    assert_eq!(days(range), ["2026-01-03"]);
    // Every account on given days (out of order and repeated: answered once, by day).
    let on = store.health_snapshots_on(&[date("2026-01-25"), date("2026-01-04"), date("2026-01-25")]).await.unwrap();
    let got: Vec<(String, i64, Option<f64>)> = on.iter().map(|(d, s)| (d.to_string(), s.account_id, s.score)).collect();
    assert_eq!(
        got,
        [
            ("2026-01-04".to_string(), 1, Some(0.0)),
            ("2026-01-25".to_string(), 1, Some(10.0)),
            ("2026-01-25".to_string(), 2, Some(50.0)),
        ]
    );
    assert_eq!(on[2].1, rows[3]);
    let too_many: Vec<_> = (0..1001).map(|_| date("2026-01-01")).collect();
    assert!(store.health_snapshots_on(&too_many).await.unwrap_err().to_string().contains("at most 1000"));
}

async fn two_nodes_writing_the_same_health_snapshots_store_them_once(a: Store, b: Store) {
    let rows: Vec<_> = (1..=300)
        .flat_map(|account| {
            [snapshot(account, "2026-01-03", 0.0, "red"), snapshot(account, "2026-02-01", 80.0, "green")]
        })
        .collect();
    let (x, y) = tokio::join!(
        a.write_health_snapshots(&rows, Some(date("2026-02-10"))),
        b.write_health_snapshots(&rows, Some(date("2026-02-11")))
    );
    assert_eq!(x.unwrap() + y.unwrap(), 600, "each row written by one node only");
    assert_eq!(a.health_snapshots_through().await.unwrap(), Some(date("2026-02-11")));
    let on = b.health_snapshots_on(&[date("2026-02-01")]).await.unwrap();
    assert_eq!(on.len(), 300);
}
