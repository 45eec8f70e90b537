//! The ODE client against a real HTTP server on 127.0.0.1 speaking the service's format.

#[path = "support/http.rs"]
mod http;
#[path = "support/replies.rs"]
mod replies;

use areo::catalog::{Catalog, ProductQuery};
use areo::ode::query::Output;
use areo::ode::reply::ReplyError;
use areo::ode::{ClientConfig, OdeClient, OdeError, OdeQuery, RetryPolicy, Selector};
use areo::pipeline::search::search;
use areo::progress::Silent;
use http::{runtime, serve, Request, Response};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DATE: &str = "2026-03-01T12:00:00.000";

fn client(server: &http::Server) -> OdeClient {
    OdeClient::new(&ClientConfig {
        base_url: server.url("/live2/"),
        retry: RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(5),
        },
        ..ClientConfig::default()
    })
    .unwrap()
}

fn hirise() -> OdeQuery {
    OdeQuery::new(Selector::Instrument {
        host: "MRO".into(),
        instrument: "HIRISE".into(),
        product_type: "RDRV11".into(),
    })
}

fn envelope(results: Value) -> Response {
    Response::new(200, json!({ "ODEResults": results }).to_string())
        .header("Content-Type", "application/json")
}

/// A service holding `total` products, answering counts and pages as ODE does.
fn catalogue_server(total: u64) -> http::Server {
    serve(move |request: &Request| {
        let results = request.param("results").unwrap_or("").to_ascii_lowercase();
        if results == "c" {
            return envelope(json!({"Count": total.to_string(), "Status": "Success"}));
        }
        let offset: u64 = request
            .param("offset")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let limit: u64 = request
            .param("limit")
            .and_then(|v| v.parse().ok())
            .unwrap_or(total);
        let products: Vec<Value> = (offset..(offset + limit).min(total))
            .map(|i| replies::product(i * 3, 5))
            .collect();
        let products = match products.len() {
            1 => products.into_iter().next().unwrap(),
            _ => Value::Array(products),
        };
        envelope(json!({
            "Products": {"Product": products},
            "QuerySummary": {"Date": DATE, "results": results},
            "Status": "Success"
        }))
    })
}

#[test]
fn a_search_counts_then_pages_and_stores_every_product_once() {
    let server = catalogue_server(23);
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(dir.path()).unwrap();
    let mut pages = Vec::new();
    let (summary, stored) = runtime()
        .block_on(search(
            &client(&server),
            &hirise(),
            10,
            None,
            Some(&catalog),
            &Silent,
            |page| pages.push(page.len()),
        ))
        .unwrap();
    assert_eq!(
        (
            summary.count,
            summary.pages,
            summary.products,
            summary.duplicates
        ),
        (23, 3, 23, 0)
    );
    assert_eq!(pages, [10, 10, 3]);
    assert_eq!(stored.inserted, 23);
    assert_eq!(catalog.query(&ProductQuery::default()).unwrap().len(), 23);

    let requests = server.requests();
    assert_eq!(requests[0].param("results"), Some("c"));
    let paging: Vec<(Option<&str>, Option<&str>)> = requests[1..]
        .iter()
        .map(|r| (r.param("offset"), r.param("limit")))
        .collect();
    assert!(
        requests[1..]
            .iter()
            .all(|r| r.param("results") == Some("fmp")),
        "files, metadata, ids"
    );
    assert_eq!(
        paging,
        [
            (Some("0"), Some("10")),
            (Some("10"), Some("10")),
            (Some("20"), Some("3"))
        ]
    );
    for request in &requests {
        assert_eq!(request.path, "/live2/");
        for (key, value) in [
            ("query", "product"),
            ("ihid", "MRO"),
            ("iid", "HIRISE"),
            ("pt", "RDRV11"),
            ("target", "mars"),
            ("output", "JSON"),
        ] {
            assert_eq!(request.param(key), Some(value), "{key}");
        }
    }
}

#[test]
fn a_limit_stops_paging_early_and_one_result_comes_as_an_object() {
    let server = catalogue_server(50);
    let mut seen = Vec::new();
    let (summary, _) = runtime()
        .block_on(search(
            &client(&server),
            &hirise(),
            4,
            Some(9),
            None,
            &Silent,
            |page| seen.extend(page.into_iter().map(|e| e.product.pdsid)),
        ))
        .unwrap();
    assert_eq!((summary.count, summary.products, summary.pages), (50, 9, 3));
    assert_eq!(seen.len(), 9);
    // The last page asked for one product: the reply's Product was an object.
    assert_eq!(server.requests().last().unwrap().param("limit"), Some("1"));
}

#[test]
fn products_repeated_across_pages_are_handed_over_once() {
    // The result set shifts while paging: page 2 starts one product early.
    let server = serve(|request: &Request| {
        if request.param("results") == Some("c") {
            return envelope(json!({"Count": "6", "Status": "Success"}));
        }
        let offset: u64 = request.param("offset").unwrap().parse().unwrap();
        let first = offset.saturating_sub(u64::from(offset > 0));
        let products: Vec<Value> = (first..(first + 3).min(7))
            .map(|i| replies::product(i * 3, 5))
            .collect();
        envelope(
            json!({"Products": {"Product": products}, "QuerySummary": {"Date": DATE}, "Status": "Success"}),
        )
    });
    let mut ids = Vec::new();
    let (summary, _) = runtime()
        .block_on(search(
            &client(&server),
            &hirise(),
            3,
            None,
            None,
            &Silent,
            |page| ids.extend(page.into_iter().map(|e| e.product.pdsid)),
        ))
        .unwrap();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "no pdsid twice");
    assert_eq!(summary.products, 6);
    assert!(summary.duplicates >= 1);
}

#[test]
fn an_error_reply_is_reported_with_the_servers_message() {
    let server = serve(|_| {
        envelope(
            json!({"Error": "ODE V2.1.3 - ODE Rest requires either a combination of IHID, IID, and PT", "Status": "ERROR"}),
        )
    });
    let error = runtime()
        .block_on(client(&server).count(&hirise()))
        .unwrap_err();
    match &error {
        OdeError::Reply {
            source: ReplyError::Server { message },
            url,
        } => {
            assert!(message.contains("requires either a combination"));
            assert!(url.contains("results=c"), "{url}");
        }
        other => panic!("expected the server's error, got {other:?}"),
    }
    assert_eq!(server.requests().len(), 1, "an ERROR reply is not retried");
}

#[test]
fn xml_output_is_asked_for_and_read() {
    let server = serve(|request: &Request| {
        assert_eq!(request.param("output"), Some("XML"));
        let xml = format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<ODEResults><Count>1</Count><Products><Product><pdsid>ESP_016430_2095_COLOR</pdsid><ihid>MRO</ihid><iid>HIRISE</iid><pt>RDRV11</pt><Map_scale>0.5</Map_scale></Product></Products><QuerySummary><Date>{DATE}</Date></QuerySummary><Status>Success</Status></ODEResults>"#
        );
        Response::new(200, xml).header("Content-Type", "text/xml")
    });
    let mut query = OdeQuery::new(Selector::PdsId("ESP_016430_2095_COLOR".into()));
    query.output = Output::Xml;
    let reply = runtime()
        .block_on(client(&server).reply(&query, "mpc", None))
        .unwrap();
    assert_eq!(reply.count, Some(1));
    assert_eq!(reply.products[0].product.map_scale, Some(0.5));
    assert_eq!(
        server.requests()[0].param("pdsid"),
        Some("ESP_016430_2095_COLOR")
    );
}

/// Serves `failures` (status, headers) in turn, then the count reply.
fn flaky(failures: Vec<(u16, Option<&'static str>)>) -> (http::Server, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let server = serve(move |_| {
        let call = counter.fetch_add(1, Ordering::SeqCst);
        match failures.get(call) {
            Some((status, retry_after)) => {
                let response = Response::new(*status, "busy");
                match retry_after {
                    Some(seconds) => response.header("Retry-After", seconds),
                    None => response,
                }
            }
            None => envelope(json!({"Count": "42", "Status": "Success"})),
        }
    });
    (server, calls)
}

#[test]
fn a_429_waits_for_retry_after_then_succeeds() {
    let (server, calls) = flaky(vec![(429, Some("1"))]);
    let started = Instant::now();
    let count = runtime()
        .block_on(client(&server).count(&hirise()))
        .unwrap();
    assert_eq!(count, 42);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After: 1 was honoured"
    );
}

#[test]
fn two_503s_are_retried_then_succeed() {
    let (server, calls) = flaky(vec![(503, None), (503, None)]);
    assert_eq!(
        runtime()
            .block_on(client(&server).count(&hirise()))
            .unwrap(),
        42
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[test]
fn a_persistent_5xx_gives_up_and_a_404_fails_at_once() {
    let (server, calls) = flaky(vec![(502, None); 10]);
    let error = runtime()
        .block_on(client(&server).count(&hirise()))
        .unwrap_err();
    assert!(
        matches!(error, OdeError::GaveUp { attempts: 4, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("last: HTTP 502"), "{error}");
    assert_eq!(calls.load(Ordering::SeqCst), 4);

    let (server, calls) = flaky(vec![(404, None)]);
    let error = runtime()
        .block_on(client(&server).count(&hirise()))
        .unwrap_err();
    assert!(
        matches!(error, OdeError::Status { status: 404, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("HTTP 404: busy"), "{error}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn a_server_that_is_not_there_is_reported_by_name() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/live2/", listener.local_addr().unwrap());
    drop(listener);
    let client = OdeClient::new(&ClientConfig {
        base_url: url.clone(),
        retry: RetryPolicy {
            attempts: 2,
            base_delay: Duration::from_millis(5),
            ..RetryPolicy::default()
        },
        ..ClientConfig::default()
    })
    .unwrap();
    let error = runtime()
        .block_on(client.count(&hirise()))
        .unwrap_err()
        .to_string();
    assert!(error.contains(&url[..url.len() - 7]), "{error}");
    assert!(error.to_lowercase().contains("connect"), "{error}");
}

#[test]
fn the_cli_searches_saves_and_counts() {
    let server = catalogue_server(7);
    let dir = tempfile::tempdir().unwrap();
    let areo = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_areo"))
            .arg("--workspace")
            .arg(dir.path())
            .args(args)
            .env("AREO_ODE_URL", server.url("/live2/"))
            .output()
            .unwrap()
    };
    let out = areo(&[
        "--json",
        "ode",
        "search",
        "--instrument",
        "hirise",
        "--type",
        "rdrv11",
        "--bbox",
        "350,10,-5,5",
        "--page-size",
        "3",
        "--save",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["count"], 7);
    assert_eq!(result["products"].as_array().unwrap().len(), 7);
    assert_eq!(result["stored"]["inserted"], 7);
    let sent = &server.requests()[0];
    assert_eq!(
        (
            sent.param("ihid"),
            sent.param("westernlon"),
            sent.param("easternlon")
        ),
        (Some("MRO"), Some("350"), Some("10"))
    );

    let listed = areo(&["--json", "catalog", "list"]);
    assert_eq!(
        serde_json::from_slice::<Value>(&listed.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        7
    );

    let count = areo(&["ode", "count", "--pdsid", "ESP_*_RED"]);
    assert_eq!(String::from_utf8_lossy(&count.stdout), "7\n");

    let before = server.requests().len();
    let bad = areo(&[
        "ode",
        "search",
        "--instrument",
        "HIRISE",
        "--type",
        "RDRV11",
        "--incidence",
        "50:10",
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("incidence: minimum 50 is above maximum 10")
    );
    let unknown = areo(&["ode", "count", "--instrument", "WIDGET", "--type", "EDR"]);
    assert!(String::from_utf8_lossy(&unknown.stderr)
        .contains("which spacecraft carries WIDGET? give --host"));
    assert_eq!(
        server.requests().len(),
        before,
        "invalid queries are never sent"
    );
}
