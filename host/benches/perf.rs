//! The performance suite: `cargo bench -p dbaudit-host` runs it all and prints every figure.
//!
//! 1. component path: `deliver` of 1,000 realistic records through the wasm component (filter,
//!    map, encode, one HTTP POST answered at once by an in-process loopback receiver);
//! 2. the same filter + map + encode natively (the plugin crate's rlib), and the ratio;
//! 3. the boundary alone: `deliver` with `enabled = false` (every record crosses into the
//!    component and is filtered; no HTTP);
//! 4. end to end: the release `dbaudit run` from a 1,000,000-record JSONL file to the emulator
//!    (validation on) and to a minimal accept-all receiver: events/s, MB/s, peak RSS;
//! 5. cold and warm start, and the component's size.
//!
//! 1-3 are criterion benchmarks (`cargo bench -p dbaudit-host -- component` runs one group);
//! 4-5 run when no filter is given or the filter is `e2e`. `DBAUDIT_BENCH_RECORDS` changes the
//! end-to-end record count (default 1,000,000).

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{black_box, Criterion, Throughput};
use dbaudit_host::boundary::{to_batch, Record};
use dbaudit_host::runtime::{Delivery, EventKind, Plugin, Severity};
use dbaudit_host::{dataset, record, Metrics, PipelineConfig};
use dbaudit_sentinelone as native;

const BATCH: usize = 1000;
const TOKEN: &str = s1_emulator::DEFAULT_TOKEN;
const ACCOUNT: &str = s1_emulator::DEFAULT_ACCOUNT_ID;

// ---- measurements shared between criterion and the summary ------------------------------------

/// Wall and process CPU time over every iteration criterion ran, per benchmark.
#[derive(Default, Clone, Copy)]
struct Sample {
    iters: u64,
    wall: Duration,
    cpu: Duration,
}

static SAMPLES: Mutex<BTreeMap<&'static str, Sample>> = Mutex::new(BTreeMap::new());

fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs `f` `iters` times, records wall and CPU time under `name`, returns the wall time.
fn timed(name: &'static str, iters: u64, mut f: impl FnMut()) -> Duration {
    let cpu0 = process_cpu();
    let t0 = Instant::now();
    for _ in 0..iters {
        f();
    }
    let wall = t0.elapsed();
    let cpu = process_cpu() - cpu0;
    let mut s = SAMPLES.lock().unwrap();
    let e = s.entry(name).or_default();
    e.iters += iters;
    e.wall += wall;
    e.cpu += cpu;
    wall
}

fn sample(name: &str) -> Option<Sample> {
    SAMPLES.lock().unwrap().get(name).copied()
}

// ---- data --------------------------------------------------------------------------------------

/// `n` realistic input lines (the data set generator's mix).
fn lines(n: u64, seed: u64) -> Vec<String> {
    dataset::Generator::new(n, seed)
        .map(|v| serde_json::to_string(&v).unwrap())
        .collect()
}

fn records(n: u64) -> Vec<Record> {
    lines(n, 42)
        .iter()
        .map(|l| record::parse_line(l, None).unwrap().record)
        .collect()
}

fn to_native(r: &Record) -> native::record::AuditRecord {
    use native::record::{EventKind as K, Severity as S};
    native::record::AuditRecord {
        id: r.id.clone(),
        timestamp_ms: r.timestamp_ms,
        event_type: match r.event_type {
            EventKind::AuditEvent => K::AuditEvent,
            EventKind::Alert => K::Alert,
            EventKind::AiDetection => K::AiDetection,
            EventKind::PolicyViolation => K::PolicyViolation,
            EventKind::ClassificationFinding => K::ClassificationFinding,
            EventKind::AuthSuccess => K::AuthSuccess,
            EventKind::AuthFailure => K::AuthFailure,
        },
        severity: match r.severity {
            Severity::Critical => S::Critical,
            Severity::Warning => S::Warning,
            Severity::Info => S::Info,
        },
        database: r.database.as_deref().map(Into::into),
        db_type: r.db_type.as_deref().map(Into::into),
        db_host: r.db_host.as_deref().map(Into::into),
        actor_user: r.actor_user.as_deref().map(Into::into),
        client_ip: r.client_ip.as_deref().map(Into::into),
        application: r.application.as_deref().map(Into::into),
        action_type: r.action_type.as_deref().map(Into::into),
        object: r.object.as_deref().map(Into::into),
        schema: r.schema.as_deref().map(Into::into),
        statement: r.statement.clone(),
        rows_affected: r.rows_affected,
        contains_pii: r.contains_pii,
        data_types: r.data_types.iter().map(|t| t.as_str().into()).collect(),
        session_id: r.session_id.clone(),
        extra_json: r.extra_json.clone(),
    }
}

/// The plugin's settings for the benches.
fn settings(console: &str, enabled: bool, custom_detection: bool) -> serde_json::Value {
    serde_json::json!({
        "name": "bench",
        "enabled": enabled,
        "console_url": console,
        "api_token": TOKEN,
        "account_id": ACCOUNT,
        "custom_detection": custom_detection,
        "batch_size": BATCH,
        "flush_interval_seconds": 5,
    })
}

fn pipeline_toml(input: &Path, dead_letter: &Path, settings: &serde_json::Value) -> String {
    let mut s = format!(
        "[input]\nkind = \"jsonl\"\npath = {:?}\n\n[sink]\n\n[sink.config]\n",
        input.display().to_string()
    );
    for (k, v) in settings.as_object().unwrap() {
        s.push_str(&format!("{k} = {v}\n"));
    }
    s.push_str(&format!(
        "\n[delivery]\ndead_letter = {:?}\n",
        dead_letter.display().to_string()
    ));
    s
}

/// A configured instance of the built-in plugin.
fn plugin(settings: &serde_json::Value) -> Plugin {
    let dir = tempfile::tempdir().unwrap();
    let toml = pipeline_toml(
        &dir.path().join("in.jsonl"),
        &dir.path().join("dl.jsonl"),
        settings,
    );
    let cfg = PipelineConfig::parse(&toml, dir.path(), &|_| None).unwrap();
    let mut loaded = dbaudit_host::plugin::load(&cfg, Metrics::new()).unwrap();
    loaded.plugin.configure().unwrap().unwrap();
    loaded.plugin
}

// ---- a minimal accept-all receiver ---------------------------------------------------------------

/// Answers every request 200 `{"data":{"success":true}}` after reading its body; counts the
/// events (`"eventType":` occurrences) and bytes it received.
struct AcceptAll {
    addr: SocketAddr,
    events: Arc<AtomicU64>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn count_events(body: &[u8]) -> u64 {
    const NEEDLE: &[u8] = b"\"eventType\":";
    body.windows(NEEDLE.len()).filter(|w| *w == NEEDLE).count() as u64
}

impl AcceptAll {
    fn start(count: bool) -> AcceptAll {
        use http_body_util::BodyExt;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let events = Arc::new(AtomicU64::new(0));
        let ev = events.clone();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let stream = tokio::select! {
                        s = listener.accept() => match s { Ok((s, _)) => s, Err(_) => continue },
                        _ = &mut stopped => return,
                    };
                    let _ = stream.set_nodelay(true);
                    let ev = ev.clone();
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(
                            move |req: hyper::Request<hyper::body::Incoming>| {
                                let ev = ev.clone();
                                async move {
                                    let body = req.into_body().collect().await?.to_bytes();
                                    if count {
                                        ev.fetch_add(count_events(&body), Ordering::Relaxed);
                                    }
                                    Ok::<_, hyper::Error>(hyper::Response::new(
                                        http_body_util::Full::new(bytes::Bytes::from_static(
                                            br#"{"data":{"success":true}}"#,
                                        )),
                                    ))
                                }
                            },
                        );
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                            .await;
                    });
                }
            });
        });
        AcceptAll {
            addr,
            events,
            _stop: stop,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

// ---- 1-3: criterion ------------------------------------------------------------------------------

/// A trivial `Io` for the native path: every request accepted at once.
struct NullIo;

impl native::io::Io for NullIo {
    fn send(
        &mut self,
        request: &native::io::Request<'_>,
    ) -> Result<native::io::Response, native::io::TransportError> {
        black_box(request.body);
        Ok(native::io::Response {
            status: 200,
            headers: Vec::new(),
            body: br#"{"data":{"success":true}}"#.to_vec(),
        })
    }
    fn random_u64(&mut self) -> u64 {
        4
    }
    fn now_ms(&self) -> i64 {
        1_705_305_600_000
    }
    fn monotonic_ms(&self) -> u64 {
        0
    }
    fn log(&self, _level: native::io::Level, _message: &str) {}
}

fn sent(d: &Delivery) -> u32 {
    match d {
        Delivery::Delivered(r) => r.sent,
        other => panic!("the bench batch was not delivered: {other:?}"),
    }
}

fn benches(c: &mut Criterion, recv: &AcceptAll) {
    let batch = records(BATCH as u64);
    let native_batch: Vec<_> = batch.iter().map(to_native).collect();
    // What crosses into the component (the pipeline builds it on its own thread).
    let wit_batch = to_batch(&batch);

    let mut g = c.benchmark_group("component");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.measurement_time(Duration::from_secs(8));
    let mut p = plugin(&settings(&recv.url(), true, false));
    assert_eq!(sent(&p.deliver(&wit_batch, 1).unwrap()), BATCH as u32);
    g.bench_function("deliver_1000", |b| {
        b.iter_custom(|n| {
            timed("component/deliver_1000", n, || {
                black_box(p.deliver(&wit_batch, 1).unwrap());
            })
        })
    });
    // Map + encode in the component, then a request that fails at once (nothing listens on
    // port 1): the component path without HTTP.
    let mut refused = plugin(&settings("http://127.0.0.1:1", true, false));
    g.bench_function("encode_1000_no_http", |b| {
        b.iter_custom(|n| {
            timed("component/encode_1000_no_http", n, || {
                black_box(refused.deliver(&wit_batch, 1).unwrap());
            })
        })
    });
    let mut off = plugin(&settings(&recv.url(), false, false));
    g.bench_function("boundary_1000", |b| {
        b.iter_custom(|n| {
            timed("component/boundary_1000", n, || {
                black_box(off.deliver(&wit_batch, 1).unwrap());
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("native");
    g.throughput(Throughput::Elements(BATCH as u64));
    let s = native::config::Settings::from_json(
        &settings("http://127.0.0.1:1", true, false).to_string(),
    )
    .unwrap();
    g.bench_function("deliver_1000", |b| {
        b.iter_custom(|n| {
            timed("native/deliver_1000", n, || {
                let v = native::deliver::deliver(&s, &mut NullIo, &native_batch, 1);
                assert_eq!(v.report().sent, BATCH as u32);
                black_box(v);
            })
        })
    });
    g.bench_function("encode_1000", |b| {
        b.iter_custom(|n| {
            timed("native/encode_1000", n, || {
                let e = native::payload::encode(
                    &s,
                    native_batch.iter().enumerate().map(|(i, r)| (i as u32, r)),
                    BATCH,
                    native::payload::MAX_REQUEST_BYTES,
                );
                black_box(e);
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("host");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("to_batch_1000", |b| {
        b.iter_custom(|n| {
            timed("host/to_batch_1000", n, || {
                black_box(to_batch(&batch));
            })
        })
    });
    let input = lines(BATCH as u64, 42);
    g.bench_function("parse_1000_lines", |b| {
        b.iter_custom(|n| {
            timed("host/parse_1000_lines", n, || {
                for l in &input {
                    black_box(record::parse_entry(l.clone(), None).unwrap());
                }
            })
        })
    });
    g.finish();
}

// ---- 4-5: end to end, start, size ----------------------------------------------------------------

struct ChildRun {
    wall: Duration,
    cpu: Duration,
    max_rss_kb: i64,
    status: i32,
    stderr: String,
}

/// Runs `cmd` to its end; wall time, CPU time and peak RSS of that child alone (wait4).
#[allow(clippy::zombie_processes)] // reaped with wait4 below, for its rusage
fn run_child(mut cmd: Command) -> ChildRun {
    use std::os::unix::process::ExitStatusExt;
    let t0 = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start dbaudit");
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; the pid is our child, not yet waited for.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // Peak RSS from /proc: wait4's ru_maxrss of a vfork-spawned child reports the *parent's*
    // high-water mark (taken at exec), and this benchmark's parent holds an emulator full of
    // events. VmHWM of the child's own address space is the honest figure.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0i64;
            while !done.load(Ordering::Relaxed) {
                if let Some(kb) = vm_hwm_kb(pid) {
                    peak = peak.max(kb);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        })
    };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid, "wait4");
    done.store(true, Ordering::Relaxed);
    let peak_kb = watcher.join().unwrap();
    let wall = t0.elapsed();
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    ChildRun {
        wall,
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        max_rss_kb: if peak_kb > 0 { peak_kb } else { ru.ru_maxrss },
        status: std::process::ExitStatus::from_raw(status)
            .code()
            .unwrap_or(-1),
        stderr: reader.join().unwrap(),
    }
}

/// `VmHWM` (peak resident set) of a running process, in KiB.
fn vm_hwm_kb(pid: libc::pid_t) -> Option<i64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn dbaudit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dbaudit"))
}

/// The JSONL data set, generated once and kept under the target directory.
fn data_set(count: u64) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("bench-audit-{count}-seed1.jsonl"));
    if !path.is_file() {
        let t0 = Instant::now();
        let tmp = dir.join(format!(".bench-audit-{count}.tmp"));
        let mut out = BufWriter::new(std::fs::File::create(&tmp).unwrap());
        dataset::write_jsonl(&mut out, count, 1).unwrap();
        out.flush().unwrap();
        drop(out);
        std::fs::rename(&tmp, &path).unwrap();
        println!(
            "generated {} ({count} records) in {:.1}s",
            path.display(),
            t0.elapsed().as_secs_f64()
        );
    }
    path
}

struct E2e {
    receiver: &'static str,
    events: u64,
    run: ChildRun,
}

fn e2e_run(
    receiver: &'static str,
    input: &Path,
    url: &str,
    custom_detection: bool,
    dir: &Path,
) -> ChildRun {
    let dl = dir.join(format!("dead-letter-{receiver}.jsonl"));
    let _ = std::fs::remove_file(&dl);
    let cfg = dir.join(format!("pipeline-{receiver}.toml"));
    std::fs::write(
        &cfg,
        pipeline_toml(input, &dl, &settings(url, true, custom_detection)),
    )
    .unwrap();
    let mut cmd = dbaudit();
    cmd.args(["--quiet", "run", "--config"]).arg(&cfg);
    let run = run_child(cmd);
    if run.status != 0 {
        eprintln!("dbaudit run exited {}:\n{}", run.status, run.stderr);
    }
    run
}

fn start_times(dir: &Path, url: &str) -> (Duration, Duration, Duration, Duration) {
    let cfg = dir.join("pipeline-start.toml");
    std::fs::write(
        &cfg,
        pipeline_toml(
            &dir.join("none.jsonl"),
            &dir.join("dl.jsonl"),
            &settings(url, true, false),
        ),
    )
    .unwrap();
    let cache = dir.join("cache");
    let validate = || {
        let mut cmd = dbaudit();
        cmd.env("DBAUDIT_CACHE_DIR", &cache)
            .args(["--quiet", "validate", "--config"])
            .arg(&cfg);
        let r = run_child(cmd);
        assert_eq!(r.status, 0, "dbaudit validate: {}", r.stderr);
        r.wall
    };
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    // Process: `dbaudit validate` (load the plugin, configure it, print).
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for _ in 0..3 {
        let _ = std::fs::remove_dir_all(&cache);
        cold.push(validate());
        warm.push(validate());
        warm.push(validate());
    }
    // In-process: engine + component (cache) + link + instantiate + configure.
    let parsed =
        PipelineConfig::parse(&std::fs::read_to_string(&cfg).unwrap(), dir, &|_| None).unwrap();
    let load = || {
        let t0 = Instant::now();
        let mut l = dbaudit_host::plugin::load(&parsed, Metrics::new()).unwrap();
        l.plugin.configure().unwrap().unwrap();
        t0.elapsed()
    };
    // SAFETY (edition 2021): the benches set no other environment concurrently.
    std::env::set_var("DBAUDIT_CACHE_DIR", dir.join("cache-inproc"));
    let mut cold_in = Vec::new();
    let mut warm_in = Vec::new();
    for _ in 0..3 {
        let _ = std::fs::remove_dir_all(dir.join("cache-inproc"));
        cold_in.push(load());
        warm_in.push(load());
        warm_in.push(load());
    }
    std::env::remove_var("DBAUDIT_CACHE_DIR");
    (median(cold), median(warm), median(cold_in), median(warm_in))
}

// ---- the report --------------------------------------------------------------------------------

fn row(name: &str, value: String, target: &str, ok: Option<bool>) {
    let mark = match ok {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "",
    };
    println!("  {name:<58} {value:>22}  {target:<14} {mark}");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The filter: the first argument that is neither an option nor an option's number.
    let filter = args
        .iter()
        .find(|a| !a.starts_with('-') && a.parse::<f64>().is_err())
        .cloned();
    let list = args.iter().any(|a| a == "--list");
    let recv = AcceptAll::start(false);

    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    benches(&mut c, &recv);
    c.final_summary();
    if list {
        println!("e2e: bench");
        return;
    }

    println!("\n==== dbaudit performance (machine: {}) ====", machine());
    let per_rec = |name: &str| {
        sample(name).map(|s| {
            (
                s.wall.as_secs_f64() / (s.iters as f64 * BATCH as f64),
                s.cpu.as_secs_f64() / (s.iters as f64 * BATCH as f64),
            )
        })
    };
    let comp = per_rec("component/deliver_1000");
    let nat = per_rec("native/deliver_1000");
    if let Some((wall, cpu)) = comp {
        row(
            "(1) component deliver, 1000/batch + POST: records/s (1 caller)",
            format!("{:.0}", 1.0 / wall),
            ">= 700,000",
            Some(1.0 / wall >= 700_000.0),
        );
        row(
            "    same, records per CPU-second (all threads, incl. receiver)",
            format!("{:.0}", 1.0 / cpu),
            "",
            None,
        );
        row("    per record", format!("{:.0} ns", wall * 1e9), "", None);
    }
    if let Some((wall, _)) = nat {
        row(
            "(2) native deliver (filter+map+encode, null Io): records/s",
            format!("{:.0}", 1.0 / wall),
            "",
            None,
        );
        if let Some((cw, _)) = comp {
            row(
                "    wasm/native time ratio (whole component path)",
                format!("{:.2}", cw / wall),
                "<= 1.5",
                Some(cw / wall <= 1.5),
            );
        }
    }
    if let (Some((enc, _)), Some((boundary, _)), Some((nat_wall, _))) = (
        per_rec("component/encode_1000_no_http"),
        per_rec("component/boundary_1000"),
        nat,
    ) {
        row(
            "    component map+encode, no HTTP (refused at once), per record",
            format!("{:.0} ns", (enc - boundary) * 1e9),
            "",
            None,
        );
        row(
            "    wasm/native, map+encode only (boundary and HTTP excluded)",
            format!("{:.2}", (enc - boundary) / nat_wall),
            "<= 1.5",
            Some((enc - boundary) / nat_wall <= 1.5),
        );
        if let Some((cw, _)) = comp {
            row(
                "    HTTP POST of the batch through wasi:http, per record",
                format!("{:.0} ns", (cw - enc) * 1e9),
                "",
                None,
            );
        }
    }
    if let Some((wall, _)) = per_rec("native/encode_1000") {
        row(
            "    native encode only: per record",
            format!("{:.0} ns", wall * 1e9),
            "",
            None,
        );
    }
    if let Some((wall, _)) = per_rec("component/boundary_1000") {
        row(
            "(3) boundary: an audit-batch into the component, per record",
            format!("{:.0} ns", wall * 1e9),
            "",
            None,
        );
        if let (Some((cw, _)), Some((nw, _))) = (comp, nat) {
            row(
                "    component path without the boundary: records/s",
                format!("{:.0}", 1.0 / (cw - wall)),
                "",
                None,
            );
            row(
                "    wasm/native, boundary excluded (map+encode+POST vs native)",
                format!("{:.2}", (cw - wall) / nw),
                "<= 1.5",
                Some((cw - wall) / nw <= 1.5),
            );
        }
    }
    if let Some((wall, _)) = per_rec("host/parse_1000_lines") {
        row(
            "    host: JSON line -> audit-record, per record",
            format!("{:.0} ns", wall * 1e9),
            "",
            None,
        );
    }

    let e2e_wanted = filter.as_deref().is_none_or(|f| "e2e".contains(f));
    if !e2e_wanted {
        return;
    }
    let count: u64 = std::env::var("DBAUDIT_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let input = data_set(count);
    let bytes = std::fs::metadata(&input).unwrap().len();
    let dir = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    {
        let emu = s1_emulator::Emulator::start(s1_emulator::EmulatorConfig::default()).unwrap();
        let run = e2e_run("emulator", &input, &emu.url(), true, dir.path());
        let events = emu.stats().accepted_events;
        runs.push(E2e {
            receiver: "emulator (validation on)",
            events,
            run,
        });
    }
    {
        let sink = AcceptAll::start(true);
        let run = e2e_run("accept-all", &input, &sink.url(), false, dir.path());
        let events = sink.events.load(Ordering::Relaxed);
        runs.push(E2e {
            receiver: "accept-all receiver",
            events,
            run,
        });
    }
    println!(
        "  (4) end to end: dbaudit run, {count} records, {:.0} MB JSONL, batch_size {BATCH}",
        bytes as f64 / 1e6
    );
    for r in &runs {
        let eps = r.events as f64 / r.run.wall.as_secs_f64();
        row(
            &format!("    {}: events/s", r.receiver),
            format!("{eps:.0}"),
            ">= 250,000",
            Some(eps >= 250_000.0 && r.events == count),
        );
        row(
            "      delivered / wall / CPU",
            format!(
                "{} / {:.2}s / {:.2}s",
                r.events,
                r.run.wall.as_secs_f64(),
                r.run.cpu.as_secs_f64()
            ),
            "",
            None,
        );
        row(
            "      input MB/s",
            format!("{:.1}", bytes as f64 / 1e6 / r.run.wall.as_secs_f64()),
            "",
            None,
        );
        row(
            "      peak RSS",
            format!("{:.1} MB", r.run.max_rss_kb as f64 / 1024.0),
            "<= 100 MB",
            Some(r.run.max_rss_kb <= 100 * 1024),
        );
    }

    let (cold, warm, cold_in, warm_in) = start_times(dir.path(), &recv.url());
    row(
        "(5) warm start: `dbaudit validate` process, cached code",
        format!("{:.1} ms", warm.as_secs_f64() * 1e3),
        "<= 50 ms",
        Some(warm <= Duration::from_millis(50)),
    );
    row(
        "    cold start: same, empty cache (compiles)",
        format!("{:.1} ms", cold.as_secs_f64() * 1e3),
        "",
        None,
    );
    row(
        "    in-process load+instantiate+configure, warm / cold",
        format!(
            "{:.1} / {:.1} ms",
            warm_in.as_secs_f64() * 1e3,
            cold_in.as_secs_f64() * 1e3
        ),
        "",
        None,
    );
    let size = dbaudit_host::builtin::COMPONENT.len();
    row(
        "    component size",
        format!("{:.0} KiB", size as f64 / 1024.0),
        "<= 1 MB",
        Some(size <= 1024 * 1024),
    );
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cpu}, {cores} cores")
}
