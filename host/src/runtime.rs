//! The wasmtime side: one `Engine` (epoch interruption, compiled code cached on disk), the
//! component pre-instantiated (`InstancePre`) with every import linked, and `Plugin`, one live
//! instance with a memory cap and a deadline per call. A call that traps fails alone: the
//! instance is thrown away, a fresh one is created and configured again.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::metrics::Metrics;
use crate::sandbox::{AllowList, SandboxHooks};
use crate::secrets::Masker;

wasmtime::component::bindgen!({
    world: "siem-sink",
    path: "../wit",
    with: {
        "wasi": wasmtime_wasi::p2::bindings::sync,
        "wasi:http": wasmtime_wasi_http::p2::bindings::sync::http,
    },
});

pub use dbaudit::sink::log::Level;
pub use dbaudit::sink::types::{
    AuditBatch, AuditRecord, BatchPlan, Check, ConfigError, Delivery, DetectionRule, EventKind,
    FilterCount, FilterReason, HuntingQuery, QueryParameter, QueryText, RecordRejection, Rejection,
    Report, RetryInfo, Severity,
};

/// How often the epoch advances; deadlines are counted in these ticks.
const TICK: Duration = Duration::from_millis(20);

/// What the store of one instance holds.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: SandboxHooks,
    limits: StoreLimits,
    masker: Masker,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl dbaudit::sink::log::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        let m = self.masker.mask(&message);
        match level {
            Level::Trace => tracing::trace!(target: "plugin", "{m}"),
            Level::Debug => tracing::debug!(target: "plugin", "{m}"),
            Level::Info => tracing::info!(target: "plugin", "{m}"),
            Level::Warn => tracing::warn!(target: "plugin", "{m}"),
            Level::Error => tracing::error!(target: "plugin", "{m}"),
        }
    }
}

impl dbaudit::sink::types::Host for HostState {}

/// Limits of every instance.
#[derive(Debug, Clone)]
pub struct Limits {
    pub memory_bytes: u64,
    pub call_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 * 1024 * 1024,
            call_timeout: Duration::from_secs(60),
        }
    }
}

/// Where compiled components are kept: `$DBAUDIT_CACHE_DIR`, else `$XDG_CACHE_HOME/dbaudit`,
/// else `~/.cache/dbaudit`.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DBAUDIT_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("dbaudit"));
    }
    std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|h| PathBuf::from(h).join(".cache").join("dbaudit"))
}

/// Advances the engine's epoch every [`TICK`] until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: Engine) -> EpochTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        std::thread::Builder::new()
            .name("dbaudit-epoch".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawn the epoch thread");
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The compiled plugin, ready to instantiate. Cheap to share (`Arc`).
pub struct PluginRuntime {
    engine: Engine,
    pre: SiemSinkPre<HostState>,
    limits: Limits,
    allow: Arc<AllowList>,
    metrics: Arc<Metrics>,
    masker: Masker,
    _ticker: EpochTicker,
}

/// `wasmtime::Error` into `anyhow::Error` with a context line.
trait WtContext<T> {
    fn ctx(self, what: &str) -> Result<T>;
}

impl<T> WtContext<T> for wasmtime::Result<T> {
    fn ctx(self, what: &str) -> Result<T> {
        self.map_err(anyhow::Error::from).context(what.to_string())
    }
}

fn engine() -> Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    Engine::new(&config).ctx("creating the wasmtime engine")
}

/// Compile a component, or load it from the on-disk cache when it was compiled before by
/// this same build of the host.
pub fn load_component(engine: &Engine, wasm: &[u8]) -> Result<Component> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    wasm.hash(&mut h);
    engine.precompile_compatibility_hash().hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    let key = format!("{:016x}", h.finish());
    let Some(dir) = cache_dir() else {
        return Component::new(engine, wasm).ctx("compiling the plugin component");
    };
    let file = dir.join(format!("plugin-{key}.cwasm"));
    if file.is_file() {
        // SAFETY: the file was written by `Engine::precompile_component` of this very host
        // (its name is a hash of the component, the engine settings and the host version) into
        // the user's own cache directory.
        match unsafe { Component::deserialize_file(engine, &file) } {
            Ok(c) => {
                tracing::debug!(file = %file.display(), "compiled plugin loaded from cache");
                return Ok(c);
            }
            Err(e) => {
                tracing::debug!(file = %file.display(), "cached plugin unusable, recompiling: {e:#}")
            }
        }
    }
    let started = std::time::Instant::now();
    let bytes = engine
        .precompile_component(wasm)
        .ctx("compiling the plugin component")?;
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "plugin compiled");
    if let Err(e) = write_atomic(&dir, &file, &bytes) {
        tracing::debug!("cannot cache the compiled plugin in {}: {e}", dir.display());
    }
    // SAFETY: `bytes` was produced by `precompile_component` on this engine just now.
    unsafe { Component::deserialize(engine, &bytes) }.ctx("loading the compiled plugin")
}

fn write_atomic(dir: &Path, file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        file.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, file)
}

impl PluginRuntime {
    pub fn new(
        wasm: &[u8],
        limits: Limits,
        allow: AllowList,
        metrics: Arc<Metrics>,
        masker: Masker,
    ) -> Result<Arc<PluginRuntime>> {
        let engine = engine()?;
        let component = load_component(&engine, wasm)?;
        let mut linker: Linker<HostState> = Linker::new(&engine);
        // All of WASI p2 (Rust's std imports cli/filesystem/sockets) over an empty context.
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).ctx("linking WASI")?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)
            .ctx("linking wasi:http")?;
        dbaudit::sink::log::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .ctx("linking the log interface")?;
        let pre = linker
            .instantiate_pre(&component)
            .ctx("the plugin imports something this host does not provide")?;
        let pre = SiemSinkPre::new(pre).ctx("the plugin does not implement world siem-sink")?;
        let ticker = EpochTicker::start(engine.clone());
        Ok(Arc::new(PluginRuntime {
            engine,
            pre,
            limits,
            allow: Arc::new(allow),
            metrics,
            masker,
            _ticker: ticker,
        }))
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    fn new_store(&self) -> Store<HostState> {
        let wasi = WasiCtxBuilder::new()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        let state = HostState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: SandboxHooks {
                allow: self.allow.clone(),
                metrics: self.metrics.clone(),
                call_timeout: self.limits.call_timeout,
            },
            limits: StoreLimitsBuilder::new()
                .memory_size(self.limits.memory_bytes as usize)
                .trap_on_grow_failure(true)
                .build(),
            masker: self.masker.clone(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        // Instantiation runs guest code (start functions) too: give it the call deadline.
        store.set_epoch_deadline(self.deadline_ticks());
        store
    }

    fn deadline_ticks(&self) -> u64 {
        self.limits
            .call_timeout
            .as_millis()
            .div_ceil(TICK.as_millis())
            .max(1) as u64
    }
}

/// A plugin call that failed: the instance trapped (or blew a limit) and was replaced.
#[derive(Debug, Clone)]
pub struct Trapped(pub String);

impl std::fmt::Display for Trapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "plugin trapped: {}", self.0)
    }
}
impl std::error::Error for Trapped {}

/// One live, configured instance of the plugin.
pub struct Plugin {
    rt: Arc<PluginRuntime>,
    store: Store<HostState>,
    sink: SiemSink,
    settings_json: String,
    plan: Option<BatchPlan>,
}

impl Plugin {
    /// Instantiate (not yet configured).
    pub fn new(rt: Arc<PluginRuntime>, settings_json: String) -> Result<Plugin> {
        let mut store = rt.new_store();
        let sink = rt
            .pre
            .instantiate(&mut store)
            .ctx("instantiating the plugin")?;
        Ok(Plugin {
            rt,
            store,
            sink,
            settings_json,
            plan: None,
        })
    }

    pub fn runtime(&self) -> &Arc<PluginRuntime> {
        &self.rt
    }

    pub fn plan(&self) -> Option<&BatchPlan> {
        self.plan.as_ref()
    }

    fn arm(&mut self) {
        self.store.set_epoch_deadline(self.rt.deadline_ticks());
    }

    fn describe(&self, e: &wasmtime::Error) -> String {
        let why = match e.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => format!(
                "deadline of {:.1}s exceeded (epoch interruption)",
                self.rt.limits.call_timeout.as_secs_f64()
            ),
            _ => format!("{e:#}"),
        };
        self.rt.masker.mask(&why)
    }

    /// Throw the broken instance away and start a fresh one, configured like the last.
    fn recover(&mut self) -> Result<()> {
        let mut store = self.rt.new_store();
        let sink = self
            .rt
            .pre
            .instantiate(&mut store)
            .ctx("re-instantiating the plugin")?;
        self.store = store;
        self.sink = sink;
        if self.plan.is_some() {
            self.arm();
            let r = self
                .sink
                .dbaudit_sink_sink()
                .call_configure(&mut self.store, &self.settings_json);
            match r {
                Ok(Ok(plan)) => self.plan = Some(plan),
                Ok(Err(errs)) => {
                    return Err(anyhow!(
                        "the re-created plugin refused its settings ({} errors)",
                        errs.len()
                    ))
                }
                Err(e) => {
                    return Err(anyhow!(
                        "the re-created plugin trapped in configure: {}",
                        self.describe(&e)
                    ))
                }
            }
        }
        Ok(())
    }

    /// Run one export call under the deadline; on a trap, replace the instance.
    fn guarded<R>(
        &mut self,
        what: &str,
        f: impl FnOnce(&SiemSink, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, Trapped> {
        self.arm();
        match f(&self.sink, &mut self.store) {
            Ok(r) => Ok(r),
            Err(e) => {
                let why = self.describe(&e);
                self.rt.metrics.plugin_traps.inc();
                tracing::error!(target: "dbaudit::runtime", call = what, "plugin trapped: {why}; re-creating the instance");
                if let Err(e2) = self.recover() {
                    tracing::error!(target: "dbaudit::runtime", "{e2:#}");
                    return Err(Trapped(format!("{why}; then: {e2:#}")));
                }
                Err(Trapped(why))
            }
        }
    }

    /// `configure` with the settings given at creation.
    pub fn configure(&mut self) -> Result<Result<BatchPlan, Vec<ConfigError>>, Trapped> {
        let json = self.settings_json.clone();
        let r = self.guarded("configure", |s, st| {
            s.dbaudit_sink_sink().call_configure(st, &json)
        })?;
        if let Ok(plan) = &r {
            self.plan = Some(*plan);
        }
        Ok(r.map_err(|errs| {
            errs.into_iter()
                .map(|e| ConfigError {
                    field: e.field,
                    message: self.rt.masker.mask(&e.message),
                })
                .collect()
        }))
    }

    pub fn deliver(&mut self, batch: &AuditBatch, attempt: u32) -> Result<Delivery, Trapped> {
        self.guarded("deliver", |s, st| {
            s.dbaudit_sink_sink().call_deliver(st, batch, attempt)
        })
    }

    pub fn check_connection(&mut self) -> Result<Vec<Check>, Trapped> {
        let r = self.guarded("check-connection", |s, st| {
            s.dbaudit_sink_sink().call_check_connection(st)
        })?;
        Ok(self.mask_checks(r))
    }

    pub fn hunting_queries(
        &mut self,
        parameters: &[QueryParameter],
    ) -> Result<Vec<HuntingQuery>, Trapped> {
        self.guarded("hunting-queries", |s, st| {
            s.dbaudit_sink_sink().call_hunting_queries(st, parameters)
        })
    }

    pub fn detection_rules(&mut self) -> Result<Vec<DetectionRule>, Trapped> {
        self.guarded("detection-rules", |s, st| {
            s.dbaudit_sink_sink().call_detection_rules(st)
        })
    }

    pub fn ensure_detection_rules(&mut self) -> Result<Vec<Check>, Trapped> {
        let r = self.guarded("ensure-detection-rules", |s, st| {
            s.dbaudit_sink_sink().call_ensure_detection_rules(st)
        })?;
        Ok(self.mask_checks(r))
    }

    fn mask_checks(&self, checks: Vec<Check>) -> Vec<Check> {
        checks
            .into_iter()
            .map(|c| Check {
                message: self.rt.masker.mask(&c.message),
                ..c
            })
            .collect()
    }
}
