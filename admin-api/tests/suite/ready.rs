//! `/ready` really checks NATS (and Postgres and ClickHouse): it fails within seconds of NATS
//! going away and recovers when it is back; `/health` stays up throughout.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a test fails loudly"
)]

use crate::common;

use common::Harness;
use kit::testing::{http_get_status, wait_http_status};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_follows_nats() {
    let mut harness = Harness::start().await;
    let ready = format!("{}/ready", harness.base);
    wait_http_status(&ready, true, kit::testing::liveness()).await;
    harness.nats.stop();
    wait_http_status(&ready, false, kit::testing::liveness()).await;
    assert_eq!(
        http_get_status(&format!("{}/health", harness.base)).await,
        Some(200)
    );
    harness.nats.restart().await;
    wait_http_status(&ready, true, kit::testing::liveness()).await;
}
