//! The agent's /metrics and /healthz over a real loopback socket (issue 14, item 3).
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use aksnet_agent::metrics::{serve, Metrics, PoolUsage, Scrape};
use aksnet_agent::reconcile::reconcile_once;
use aksnet_agent::{AgentSettings, Mode};
use aksnet_nft::FakeNft;

fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn metrics_count_reconciles_and_show_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = AgentSettings::new(Mode::NodeSubnet);
    settings.vnet_cidrs = vec!["10.224.0.0/12".parse().unwrap()];
    settings.config_dir = dir.path().to_path_buf();
    let nft = FakeNft::default();
    let metrics = Arc::new(Metrics::default());
    for _ in 0..2 {
        let r = reconcile_once(&nft, &settings);
        metrics.observe(&r, Duration::from_millis(3));
    }
    std::fs::write(dir.path().join("ip-masq-bad"), "bogus: 1\n").unwrap();
    let r = reconcile_once(&nft, &settings);
    assert!(r.is_err());
    metrics.observe(&r, Duration::from_millis(1));
    // Two keepalive rounds, the second failed; the store retried 3 attempts so far.
    metrics.record_keepalive(true, 1);
    metrics.record_keepalive(false, 3);

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let pool = Arc::new(|| Scrape {
        pool: Some(PoolUsage {
            node: "aks-nodepool1-0".into(),
            mode: "nodesubnet",
            reserved: 30,
            used: 4,
            blocks: None,
        }),
        ..Scrape::default()
    });
    serve(listener, metrics, pool);

    let m = get(addr, "/metrics");
    assert!(m.starts_with("HTTP/1.1 200 OK\r\n"), "{m}");
    assert!(m.contains("Content-Type: text/plain; version=0.0.4"), "{m}");
    for line in [
        "aksnet_agent_reconciles_total{outcome=\"applied\"} 1",
        "aksnet_agent_reconciles_total{outcome=\"unchanged\"} 1",
        "aksnet_agent_reconciles_total{outcome=\"error\"} 1",
        "aksnet_agent_reconcile_duration_seconds_sum 0.007",
        "aksnet_agent_reconcile_duration_seconds_count 3",
        "aksnet_agent_non_masquerade_cidrs 1",
        "aksnet_node_pod_addresses{node=\"aks-nodepool1-0\",mode=\"nodesubnet\",state=\"free\"} 26",
        "# TYPE aksnet_agent_reconciles_total counter",
        "aksnet_agent_keepalive_rounds_total{result=\"ok\"} 1",
        "aksnet_agent_keepalive_rounds_total{result=\"failed\"} 1",
        "aksnet_store_retries_total 3",
    ] {
        assert!(m.contains(&format!("{line}\n")), "missing {line:?} in\n{m}");
    }
    let h = get(addr, "/healthz");
    assert!(
        h.starts_with("HTTP/1.1 200 OK") && h.ends_with("ok\n"),
        "{h}"
    );
    assert!(get(addr, "/nope").starts_with("HTTP/1.1 404"));
}

#[test]
fn lan_loop_rounds_are_counted_per_loop() {
    let metrics = Metrics::default();
    assert!(!metrics
        .render(&Scrape::default())
        .contains("aksnet_agent_loop_"));
    metrics.observe_loop("l2_answers", true, Duration::from_millis(2));
    metrics.observe_loop("l2_answers", false, Duration::from_millis(1));
    metrics.observe_loop("kubenet_routes", true, Duration::from_millis(4));
    let m = metrics.render(&Scrape::default());
    for line in [
        "# TYPE aksnet_agent_loop_reconciles_total counter",
        "aksnet_agent_loop_reconciles_total{loop=\"kubenet_routes\",outcome=\"ok\"} 1",
        "aksnet_agent_loop_reconciles_total{loop=\"l2_answers\",outcome=\"ok\"} 1",
        "aksnet_agent_loop_reconciles_total{loop=\"l2_answers\",outcome=\"error\"} 1",
        "aksnet_agent_loop_reconcile_duration_seconds_sum{loop=\"l2_answers\"} 0.003",
        "aksnet_agent_loop_reconcile_duration_seconds_count{loop=\"kubenet_routes\"} 1",
    ] {
        assert!(m.contains(&format!("{line}\n")), "missing {line:?} in\n{m}");
    }
}
