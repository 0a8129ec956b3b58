//! The Kubernetes source (feature `kube`) against RECORDED API responses (issue 14, item 4).
//!
//! No API server can run on the test machines, so a small HTTP/1.1 server on 127.0.0.1
//! replays responses written in the shapes a kube-apiserver v1.33 sends
//! (tests/kube-api/README.md has the sources): list bodies with the list's resourceVersion,
//! chunked watch streams of one JSON event per line, a BOOKMARK, the ERROR event with a 410
//! Status that ends a watch whose resourceVersion is too old, a 403 Status, and a watch
//! connection dropped in the middle of a chunk. The real kube-rs client and watcher run
//! unchanged against it; what is asserted is what the agent's source delivers and which
//! requests the client made (a resumed watch from the bookmark's version, a relist after 410).
#![cfg(feature = "kube")]
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aksnet_agent::kube_source::{KubeConfigSource, KubeSettings, KubeSource};
use aksnet_agent::policy_source::{PolicySource, SourceErrors};

fn recording(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/kube-api")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// How one response ends.
#[derive(Clone, Copy, Debug)]
enum End {
    /// The terminating chunk (the server ended the watch: timeout, or after an ERROR event).
    Close,
    /// Half a chunk, then the socket is closed (a load balancer or node went away).
    Drop,
    /// Kept open until the test ends (no events).
    Hold,
}

#[derive(Clone, Debug)]
enum Reply {
    /// 200 with this body (Content-Length).
    List(&'static str),
    /// An error Status with this HTTP code.
    Status(u16, &'static str),
    /// A 200 watch stream: each line of the file as one chunk, then `End`.
    Watch(&'static str, End),
}

#[derive(Debug, Clone)]
struct Request {
    path: String,
    query: BTreeMap<String, String>,
    authorization: Option<String>,
}

impl Request {
    fn watch(&self) -> bool {
        self.query.get("watch").map(String::as_str) == Some("true")
    }
    fn rv(&self) -> &str {
        self.query.get("resourceVersion").map_or("", String::as_str)
    }
}

/// The recorded API: a queue of replies per (path, watch); the last reply repeats, except
/// that a watch queue that ran out holds the connection open.
struct Recorded {
    script: Mutex<BTreeMap<(String, bool), Vec<Reply>>>,
    log: Mutex<Vec<Request>>,
    /// The first pods list waits for this (so the test sees the source before it).
    pods_gate: AtomicBool,
    stop: AtomicBool,
}

impl Recorded {
    fn next(&self, r: &Request) -> Reply {
        let mut s = self.script.lock().unwrap();
        let q = s.entry((r.path.clone(), r.watch())).or_default();
        match (q.len(), r.watch()) {
            (0, true) => Reply::Watch("", End::Hold),
            (0, false) => Reply::Status(404, ""),
            (1, false) => q[0].clone(),
            _ => q.remove(0),
        }
    }
}

fn parse_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let target = line.split_whitespace().nth(1)?.to_string();
    let mut authorization = None;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        if h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                authorization = Some(v.trim().to_string());
            }
        }
    }
    let (path, q) = target.split_once('?').unwrap_or((&target, ""));
    let query = q
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Some(Request {
        path: path.to_string(),
        query,
        authorization,
    })
}

/// The headers a kube-apiserver sends (an Audit-Id per request, no-cache, JSON, the API
/// Priority and Fairness flow schema and priority level uids).
fn head(code: u16, reason: &str, extra: &str) -> String {
    format!(
        "HTTP/1.1 {code} {reason}\r\nAudit-Id: 5c0b2d7e-3f41-4c8a-9e62-1b7d4a0f9c3e\r\nCache-Control: no-cache, private\r\nContent-Type: application/json\r\nX-Kubernetes-Pf-Flowschema-Uid: 8d3f0a51-7c2e-4b9d-a6f4-2e1c9b7d5a30\r\nX-Kubernetes-Pf-Prioritylevel-Uid: 3a9e6c12-0b4d-4f7a-8e25-c61d0f9b7e48\r\nDate: Thu, 03 Dec 2026 04:30:00 GMT\r\n{extra}\r\n"
    )
}

fn serve_conn(api: Arc<Recorded>, stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    while let Some(req) = parse_request(&mut reader) {
        if req.path == "/api/v1/pods" && !req.watch() {
            while !api.pods_gate.load(Ordering::SeqCst) && !api.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        api.log.lock().unwrap().push(req.clone());
        let reply = api.next(&req);
        let ok = match reply {
            Reply::List(file) => {
                let body = recording(file);
                let h = head(200, "OK", &format!("Content-Length: {}\r\n", body.len()));
                out.write_all(h.as_bytes())
                    .and_then(|_| out.write_all(&body))
            }
            Reply::Status(code, file) => {
                let body = if file.is_empty() {
                    b"{}".to_vec()
                } else {
                    recording(file)
                };
                let reason = if code == 403 {
                    "Forbidden"
                } else {
                    "Not Found"
                };
                let h = head(code, reason, &format!("Content-Length: {}\r\n", body.len()));
                out.write_all(h.as_bytes())
                    .and_then(|_| out.write_all(&body))
            }
            Reply::Watch(file, end) => {
                watch(&api, &mut out, file, end);
                return;
            }
        };
        if ok.is_err() {
            return;
        }
    }
}

/// A watch: one chunk per event line (the API server flushes after each event), then the end.
fn watch(api: &Recorded, out: &mut TcpStream, file: &str, end: End) {
    let h = head(200, "OK", "Transfer-Encoding: chunked\r\n");
    if out.write_all(h.as_bytes()).is_err() {
        return;
    }
    let events = if file.is_empty() {
        Vec::new()
    } else {
        recording(file)
    };
    for line in events.split_inclusive(|b| *b == b'\n') {
        let mut chunk = format!("{:x}\r\n", line.len()).into_bytes();
        chunk.extend_from_slice(line);
        chunk.extend_from_slice(b"\r\n");
        if out.write_all(&chunk).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    match end {
        End::Close => {
            let _ = out.write_all(b"0\r\n\r\n");
        }
        End::Drop => {
            let _ = out.write_all(b"1f4\r\n{\"type\":\"MODIFIED\",\"obj");
            let _ = out.shutdown(std::net::Shutdown::Both);
        }
        End::Hold => {
            while !api.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

struct Server {
    api: Arc<Recorded>,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.api.stop.store(true, Ordering::SeqCst);
    }
}

fn start(script: Vec<((&str, bool), Vec<Reply>)>) -> Server {
    let api = Arc::new(Recorded {
        script: Mutex::new(
            script
                .into_iter()
                .map(|((p, w), r)| ((p.to_string(), w), r))
                .collect(),
        ),
        log: Mutex::new(Vec::new()),
        pods_gate: AtomicBool::new(false),
        stop: AtomicBool::new(false),
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let a = api.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let a = a.clone();
            std::thread::spawn(move || serve_conn(a, conn));
        }
    });
    Server { api, port }
}

fn kubeconfig(dir: &std::path::Path, port: u16) -> PathBuf {
    let p = dir.join("kubeconfig");
    std::fs::write(
        &p,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: recorded\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: recorded\n  context:\n    cluster: recorded\n    user: agent\ncurrent-context: recorded\nusers:\n- name: agent\n  user:\n    token: recorded-token\n"
        ),
    )
    .unwrap();
    p
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn names<T>(v: &[T], f: impl Fn(&T) -> String) -> Vec<String> {
    let mut n: Vec<String> = v.iter().map(f).collect();
    n.sort();
    n
}

#[test]
fn list_watch_bookmark_410_relist_drop_and_403_against_recordings() {
    const NP: &str = "/apis/networking.k8s.io/v1/networkpolicies";
    let server = start(vec![
        (
            ("/api/v1/namespaces", false),
            vec![Reply::List("namespaces-list.json")],
        ),
        (
            ("/api/v1/nodes", false),
            vec![Reply::List("nodes-list.json")],
        ),
        ((NP, false), vec![Reply::List("networkpolicies-list.json")]),
        (
            (NP, true),
            vec![
                Reply::Watch("networkpolicies-watch-1.jsonl", End::Drop),
                Reply::Watch("networkpolicies-watch-2.jsonl", End::Hold),
            ],
        ),
        (
            ("/api/v1/pods", false),
            vec![
                Reply::Status(403, "pods-forbidden.json"),
                Reply::List("pods-list-1.json"),
                Reply::List("pods-list-2.json"),
            ],
        ),
        (
            ("/api/v1/pods", true),
            vec![Reply::Watch("pods-watch-1.jsonl", End::Close)],
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let source = KubeSource::start(KubeSettings {
        config: KubeConfigSource::File(kubeconfig(dir.path(), server.port)),
        relist: KubeSettings::DEFAULT_RELIST,
    })
    .unwrap();
    assert_eq!(
        source.describe(),
        format!("kubernetes http://127.0.0.1:{}/", server.port)
    );

    // Namespaces, nodes and policies are listed; pods are not yet: no view, never half of one.
    wait_for(
        "namespaces, nodes, policies listed",
        Duration::from_secs(20),
        || {
            let c = source.caches();
            [
                aksnet_agent::kube_source::Kind::Namespace,
                aksnet_agent::kube_source::Kind::Node,
            ]
            .iter()
            .all(|k| c.kinds.get(k).is_some_and(|s| s.synced))
        },
    );
    let err = source.load().unwrap_err();
    assert!(matches!(err, SourceErrors::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("pods"), "{err}");
    let node = source.node("node-0").unwrap();
    assert_eq!(
        node.pod_cidrs,
        ["10.244.0.0/24".parse::<ipnet::IpNet>().unwrap()]
    );
    assert_eq!(
        node.internal_ips().collect::<Vec<_>>(),
        ["10.240.0.4".parse::<std::net::IpAddr>().unwrap()]
    );

    // The first pods list is refused (RBAC): the error is kept and the list retried.
    server.api.pods_gate.store(true, Ordering::SeqCst);
    wait_for("the 403 seen", Duration::from_secs(20), || {
        source
            .load()
            .is_err_and(|e| e.to_string().contains("forbidden"))
    });

    // Then: pods listed (web-0, web-1), watched (db-0 added), 410 → relist (web-1 is gone in
    // the new list, so it must be gone from the view); policies: allow-web added, bookmark,
    // connection dropped, resumed from the bookmark, deny-all deleted.
    wait_for("the final view", Duration::from_secs(30), || {
        source.load().is_ok_and(|v| {
            names(&v.cluster.pods, |p| p.name.clone()) == ["db-0", "web-0"]
                && names(&v.policies, |p| p.name.clone()) == ["allow-web"]
        })
    });
    let view = source.load().unwrap();
    assert_eq!(
        names(&view.cluster.namespaces, |n| n.name.clone()),
        ["default", "kube-system", "team-a"]
    );
    let db = view.cluster.pods.iter().find(|p| p.name == "db-0").unwrap();
    assert_eq!(db.ips, ["10.244.0.9".parse::<std::net::IpAddr>().unwrap()]);
    assert_eq!(db.node.as_deref(), Some("node-0"));

    let log = server.api.log.lock().unwrap().clone();
    let of = |path: &str, watch: bool| -> Vec<Request> {
        log.iter()
            .filter(|r| r.path == path && r.watch() == watch)
            .cloned()
            .collect()
    };
    let pod_lists = of("/api/v1/pods", false);
    assert_eq!(
        pod_lists.len(),
        3,
        "403, first list, relist after 410: {pod_lists:?}"
    );
    let pod_watches = of("/api/v1/pods", true);
    assert_eq!(
        pod_watches[0].rv(),
        "4000",
        "watch from the list's resourceVersion"
    );
    assert_eq!(
        pod_watches[0]
            .query
            .get("allowWatchBookmarks")
            .map(String::as_str),
        Some("true")
    );
    assert_eq!(
        pod_watches.get(1).map(Request::rv),
        Some("4600"),
        "watch from the relist's version"
    );
    let np_watches = of(NP, true);
    assert_eq!(np_watches[0].rv(), "5000");
    assert_eq!(
        np_watches.get(1).map(Request::rv),
        Some("5010"),
        "resumed from the BOOKMARK's version, not relisted"
    );
    assert_eq!(
        of(NP, false).len(),
        1,
        "a dropped connection does not relist"
    );
    assert!(log
        .iter()
        .all(|r| r.authorization.as_deref() == Some("Bearer recorded-token")));

    let c = source.caches();
    let pods = &c.kinds[&aksnet_agent::kube_source::Kind::Pod];
    assert_eq!((pods.lists, pods.errors >= 2), (2, true), "{pods:?}");
    // The fingerprint changes with the view, so the policy loop re-reads on change only.
    let fp = source.fingerprint().unwrap();
    assert_eq!(fp, source.fingerprint().unwrap());
}
