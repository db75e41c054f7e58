//! The page benchmark's peer: the accounts list as PostgreSQL SQL.
//!
//! Every account's row as the list shows it (shown health, band, ARR, owner, stage,
//! renewal date) is read through `/api/views/accounts` page by page (untimed) into a table
//! indexed on the sort keys. Each list page of the benchmark is then the three queries
//! that answer it — its 50 rows, the count matching its filters, the owners the filter
//! offers — over one connection, timed together like a page: a first run, then `runs`.
//! Each page's rows are compared, id by id, with what cairn's view of the same page lists.

use std::time::Instant;

use anyhow::{Context, Result};
use cairn::loopback::Connection;
use serde_json::Value;
use sqlx::Connection as _;

use crate::ingest::{drop_schema, unique_schema};
use crate::pages::{ListSql, Page, PageTime, summarise};

/// Columns of the peer's table, as the view's JSON names them.
struct Rows {
    id: Vec<i64>,
    name: Vec<String>,
    arr: Vec<Option<f64>>,
    health: Vec<Option<f64>>,
    band: Vec<String>,
    owner: Vec<Option<String>>,
    stage: Vec<Option<String>>,
    renewal_date: Vec<Option<String>>,
}

async fn view(conn: &mut Connection, auth: &str, path_and_query: &str) -> Result<Value> {
    let path = format!("/api/views{path_and_query}");
    let r = conn.request("GET", &path, &[("Authorization", auth)], b"").await?;
    anyhow::ensure!(r.status == 200, "{path} answered {}: {}", r.status, r.body.chars().take(300).collect::<String>());
    Ok(r.json())
}

fn ids(view: &Value) -> Vec<i64> {
    view["rows"].as_array().map(|rows| rows.iter().filter_map(|r| r["id"].as_i64()).collect()).unwrap_or_default()
}

/// Every account's row, through the accounts view page by page.
async fn all_rows(conn: &mut Connection, auth: &str) -> Result<Rows> {
    let text = |v: &Value| v.as_str().map(str::to_string);
    let mut rows = Rows {
        id: vec![],
        name: vec![],
        arr: vec![],
        health: vec![],
        band: vec![],
        owner: vec![],
        stage: vec![],
        renewal_date: vec![],
    };
    let mut page = 1;
    loop {
        let v = view(conn, auth, &format!("/accounts?sort=name&page={page}")).await?;
        for r in v["rows"].as_array().context("the accounts view has no rows")? {
            rows.id.push(r["id"].as_i64().context("a row without an id")?);
            rows.name.push(text(&r["name"]).unwrap_or_default());
            rows.arr.push(r["arr"].as_f64());
            rows.health.push(r["health"].as_f64());
            rows.band.push(text(&r["band"]).unwrap_or_default());
            rows.owner.push(text(&r["owner"]));
            rows.stage.push(text(&r["stage"]));
            rows.renewal_date.push(text(&r["renewal_date"]));
        }
        if page >= v["pages"].as_u64().unwrap_or(1) {
            return Ok(rows);
        }
        page += 1;
    }
}

/// Times the accounts list `pages` (those with SQL) as PostgreSQL queries; their times,
/// by the same names, and a note saying whether the rows agree.
pub(crate) async fn accounts_list(
    pg: &str,
    addr: &str,
    key: &str,
    pages: &[Page],
    runs: usize,
) -> Result<(Vec<PageTime>, String)> {
    let auth = format!("Bearer {key}");
    let mut http = Connection::new(addr);
    let rows = all_rows(&mut http, &auth).await?;
    let schema = unique_schema("pages");
    let mut c =
        sqlx::PgConnection::connect(pg).await.context("connecting to PostgreSQL (pass --pg none to leave it out)")?;
    let result = async {
        for statement in [
            format!("CREATE SCHEMA {schema}"),
            format!(
                "CREATE TABLE {schema}.accounts (id bigint PRIMARY KEY, name text NOT NULL, arr float8, health float8, \
                 band text NOT NULL, owner text, stage text, renewal_date date)"
            ),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&mut c).await?;
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {schema}.accounts SELECT * FROM UNNEST($1::int8[], $2::text[], $3::float8[], $4::float8[], \
             $5::text[], $6::text[], $7::text[], $8::text[]::date[])"
        )))
        .bind(&rows.id)
        .bind(&rows.name)
        .bind(&rows.arr)
        .bind(&rows.health)
        .bind(&rows.band)
        .bind(&rows.owner)
        .bind(&rows.stage)
        .bind(&rows.renewal_date)
        .execute(&mut c)
        .await?;
        for statement in [
            format!("CREATE INDEX ON {schema}.accounts (health, id)"),
            format!("CREATE INDEX ON {schema}.accounts (arr, id)"),
            format!("CREATE INDEX ON {schema}.accounts ((lower(name) COLLATE \"C\"), id)"),
            format!("CREATE INDEX ON {schema}.accounts (band)"),
            format!("CREATE INDEX ON {schema}.accounts (owner)"),
            format!("ANALYZE {schema}.accounts"),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&mut c).await?;
        }
        let mut times = Vec::new();
        let mut agree = 0;
        let mut differ = Vec::new();
        for p in pages {
            let Some(sql) = &p.sql else { continue };
            let (first_ms, got) = page(&mut c, &schema, sql).await?;
            let mut runs_ms = Vec::with_capacity(runs);
            for _ in 0..runs {
                runs_ms.push(page(&mut c, &schema, sql).await?.0);
            }
            times.push(summarise(&p.name, &sql_text(&schema, sql), first_ms, runs_ms, 0));
            if got == ids(&view(&mut http, &auth, &p.path).await?) {
                agree += 1;
            } else {
                differ.push(p.name.clone());
            }
        }
        let note = format!(
            "PostgreSQL, {} accounts in one table indexed on the sort keys; a page = its rows, its count and the \
             owners the filter offers, three queries over one connection; rows agree with cairn's on {agree} of {} \
             pages{}",
            rows.id.len(),
            times.len(),
            if differ.is_empty() { String::new() } else { format!(" (differ: {})", differ.join(", ")) }
        );
        anyhow::Ok((times, note))
    }
    .await;
    drop(c);
    drop_schema(pg, &schema).await;
    result
}

fn sql_text(schema: &str, q: &ListSql) -> String {
    format!("SELECT … FROM {schema}.accounts WHERE {} ORDER BY {} LIMIT 50 OFFSET {}", q.filter, q.order, q.offset)
}

/// One page as SQL: (ms, the page's ids).
async fn page(c: &mut sqlx::PgConnection, schema: &str, q: &ListSql) -> Result<(f64, Vec<i64>)> {
    use sqlx::Row as _;
    let t = Instant::now();
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, name, arr, health, band, owner, stage, renewal_date::text FROM {schema}.accounts WHERE {} \
         ORDER BY {} LIMIT 50 OFFSET {}",
        q.filter, q.order, q.offset
    )))
    .fetch_all(&mut *c)
    .await?;
    let _count: i64 =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {schema}.accounts WHERE {}", q.filter)))
            .fetch_one(&mut *c)
            .await?;
    let _owners: Vec<Option<String>> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT DISTINCT owner FROM {schema}.accounts WHERE owner IS NOT NULL ORDER BY owner"
    )))
    .fetch_all(&mut *c)
    .await?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    Ok((ms, rows.iter().map(|r| r.get::<i64, _>(0)).collect()))
}
