//! X-Ray: every DynamoDB call inside a sampled invocation reaches the
//! daemon as a subsegment of the invocation's segment. A UDP socket on
//! loopback stands in for the daemon and the documents it receives are
//! checked; without a daemon nothing is sent.

use std::net::UdpSocket;
use std::time::Duration;

use common::dynamodb_calls::{instrument_with, measure_traced};
use common::xray::{Daemon, TraceHeader};
use serde_json::Value;

use crate::support::{dynamodb_endpoint, fresh_table};

const TRACE: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

fn daemon() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a loopback UDP port");
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    socket
}

/// The segment documents the daemon received, each after its header line.
fn received(socket: &UdpSocket) -> Vec<Value> {
    let mut documents = Vec::new();
    let mut buffer = [0_u8; 65_536];
    while let Ok(length) = socket.recv(&mut buffer) {
        let datagram = std::str::from_utf8(&buffer[..length]).expect("UTF-8");
        let (header, document) = datagram.split_once('\n').expect("header line");
        assert_eq!(
            serde_json::from_str::<Value>(header).expect("header JSON"),
            serde_json::json!({"format": "json", "version": 1})
        );
        documents.push(serde_json::from_str(document).expect("segment JSON"));
    }
    documents
}

#[tokio::test]
async fn each_dynamodb_call_is_a_subsegment_of_the_invocation() {
    let socket = daemon();
    let address = socket.local_addr().expect("address");
    let client = local_api::table::local_client(&dynamodb_endpoint()).await;
    let client = instrument_with(&client, Daemon::at(address));
    let table = fresh_table();
    let (results, calls) = measure_traced(TraceHeader::parse(TRACE), async {
        let listed = client.list_tables().send().await.is_ok();
        let missing = client
            .get_item()
            .table_name(&table)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("x".into()))
            .send()
            .await
            .is_err();
        (listed, missing)
    })
    .await;
    assert_eq!(results, (true, true));
    assert_eq!(calls.latencies.len(), 2);
    let documents = received(&socket);
    assert_eq!(documents.len(), 2, "{documents:?}");
    for document in &documents {
        assert_eq!(document["type"], "subsegment");
        assert_eq!(document["trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(document["parent_id"], "53995c3f42cd8ad8");
        assert_eq!(document["name"], "DynamoDB");
        assert_eq!(document["namespace"], "aws");
        assert!(document["id"].as_str().is_some_and(|id| id.len() == 16));
        assert!(document["end_time"].as_f64() >= document["start_time"].as_f64());
    }
    assert_ne!(documents[0]["id"], documents[1]["id"]);
    assert_eq!(documents[0]["aws"]["operation"], "ListTables");
    assert_eq!(documents[0]["http"]["response"]["status"], 200);
    assert!(documents[0].get("error").is_none());
    assert_eq!(documents[1]["aws"]["operation"], "GetItem");
    assert_eq!(documents[1]["aws"]["table_name"], table.as_str());
    assert_eq!(documents[1]["http"]["response"]["status"], 400);
    assert_eq!(
        documents[1]["error"], true,
        "a missing table is a client error"
    );
}

#[tokio::test]
async fn nothing_is_sent_without_a_daemon_or_outside_a_sampled_trace() {
    let socket = daemon();
    let address = socket.local_addr().expect("address");
    let local = local_api::table::local_client(&dynamodb_endpoint()).await;
    let untraced = instrument_with(&local, Daemon::default());
    let traced = instrument_with(&local, Daemon::at(address));
    let unsampled = TraceHeader::parse(
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0",
    );
    let (_, calls) = measure_traced(TraceHeader::parse(TRACE), async {
        untraced.list_tables().send().await.expect("ListTables");
    })
    .await;
    assert_eq!(calls.latencies.len(), 1, "still measured for the metrics");
    measure_traced(unsampled, async {
        traced.list_tables().send().await.expect("ListTables");
    })
    .await;
    traced
        .list_tables()
        .send()
        .await
        .expect("outside any invocation");
    assert_eq!(received(&socket), Vec::<Value>::new());
}
