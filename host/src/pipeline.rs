//! The pipeline: input -> batcher -> plugin `deliver` -> verdict -> delivered / retry timer /
//! dead letter, until the input ends (or, when following, until shutdown). On shutdown:
//! flush, keep delivering for the grace period, then dead-letter what is left. Never drops.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, Instant as TInstant};

use crate::batcher::{Batch, Batcher};
use crate::boundary::subset;
use crate::config::PipelineConfig;
use crate::deadletter::DeadLetterWriter;
use crate::delivery::interpret;
use crate::input::{self, InputItem};
use crate::metrics::Metrics;
use crate::plugin::{self, PluginWorker};
use crate::record::{Entry, Meta};
use crate::runtime::{AuditBatch, BatchPlan, ConfigError, Delivery, Trapped};
use crate::summary::Summary;

/// Where records come from.
pub enum Source {
    /// The pipeline file's `[input]`.
    Configured,
    /// Given items (e.g. `replay` of a dead letter).
    Items(Vec<InputItem>),
}

/// Options of one run.
pub struct RunOptions {
    /// Counters; watch them for progress, serve them with [`crate::metrics::serve`].
    pub metrics: Arc<Metrics>,
    /// Set to `true` to stop (flush, grace period, dead-letter the rest).
    pub shutdown: Option<watch::Receiver<bool>>,
    pub source: Source,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            metrics: Metrics::new(),
            shutdown: None,
            source: Source::Configured,
        }
    }
}

/// Why a run could not start.
#[derive(Debug)]
pub enum RunError {
    /// The plugin refused its settings (every error, each naming its field; secrets masked).
    Config(Vec<ConfigError>),
    Other(anyhow::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Config(errs) => {
                write!(f, "the plugin refused its settings:")?;
                for e in errs {
                    write!(f, "\n  {}: {}", e.field, e.message)?;
                }
                Ok(())
            }
            RunError::Other(e) => write!(f, "{e:#}"),
        }
    }
}
impl std::error::Error for RunError {}

impl From<anyhow::Error> for RunError {
    fn from(e: anyhow::Error) -> Self {
        RunError::Other(e)
    }
}

/// A batch on its way: the records (shared with the plugin thread during a call, never
/// copied) and, in the same order, what the dead letter needs of each.
struct Work {
    records: Arc<AuditBatch>,
    metas: Vec<Meta>,
    attempt: u32,
    traps: u32,
}

impl Work {
    fn new(batch: Batch) -> Work {
        Work {
            records: Arc::new(batch.records.finish()),
            metas: batch.metas,
            attempt: 1,
            traps: 0,
        }
    }

    fn len(&self) -> usize {
        self.metas.len()
    }
}

/// Batches waiting for the plugin before the input is read on.
const MAX_READY: usize = 2;

type InFlight = Pin<Box<dyn Future<Output = Result<Delivery, Trapped>> + Send>>;

/// Run a pipeline to its end and return the summary.
pub async fn run_pipeline(cfg: &PipelineConfig, opts: RunOptions) -> Result<Summary, RunError> {
    let metrics = opts.metrics.clone();
    let c = cfg.clone();
    let m = metrics.clone();
    let mut loaded = tokio::task::spawn_blocking(move || plugin::load(&c, m))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))??;
    let plan = match loaded.plugin.configure() {
        Ok(Ok(plan)) => plan,
        Ok(Err(errs)) => return Err(RunError::Config(errs)),
        Err(t) => return Err(RunError::Other(anyhow::anyhow!("configure failed: {t}"))),
    };
    tracing::info!(
        target: "dbaudit::pipeline",
        plugin = %loaded.manifest.plugin.name,
        max_events = plan.max_events,
        max_bytes = plan.max_bytes,
        flush_interval_ms = plan.flush_interval_ms,
        retry_attempts = plan.retry_attempts,
        "plugin configured"
    );
    let masker = loaded.masker.clone();
    let worker = PluginWorker::spawn(loaded.plugin);
    let dead = DeadLetterWriter::new(cfg.delivery.dead_letter.clone(), masker);
    let mut p = Pipeline {
        cfg,
        plan,
        metrics: metrics.clone(),
        worker,
        dead,
        batcher: Batcher::new(&plan),
        ready: VecDeque::new(),
        retries: Vec::new(),
        inflight_work: None,
        failure: None,
    };
    let started = Instant::now();
    p.run(opts).await;
    let m = &metrics;
    Ok(Summary {
        read: m.records_read.get(),
        delivered: m.records_delivered.get(),
        filtered: m.filtered(),
        retried: m.records_retried.get(),
        dead_lettered: m.records_dead_lettered.get(),
        bad_lines: m.bad_lines.get(),
        plugin_traps: m.plugin_traps.get(),
        elapsed: started.elapsed(),
        dead_letter: Some(cfg.delivery.dead_letter.clone()),
        failure: p.failure,
    })
}

struct Pipeline<'a> {
    cfg: &'a PipelineConfig,
    plan: BatchPlan,
    metrics: Arc<Metrics>,
    worker: PluginWorker,
    dead: DeadLetterWriter,
    batcher: Batcher,
    ready: VecDeque<Work>,
    retries: Vec<(Instant, Work)>,
    /// The batch being delivered (its records are shared with the plugin call).
    inflight_work: Option<Work>,
    failure: Option<String>,
}

/// The longest wait a plugin's retry verdict can ask for.
const MAX_RETRY_WAIT_MS: u64 = 3_600_000;

fn far() -> TInstant {
    TInstant::now() + Duration::from_secs(86400 * 365)
}

async fn wait_shutdown(sd: &mut Option<watch::Receiver<bool>>) {
    match sd {
        Some(rx) => {
            if rx.wait_for(|v| *v).await.is_err() {
                std::future::pending::<()>().await
            }
        }
        None => std::future::pending::<()>().await,
    }
}

impl Pipeline<'_> {
    fn dead_letter(&mut self, m: &Meta, reason: &str, attempts: u32) {
        if let Err(err) = self.dead.write(m.raw.to_value(), reason, attempts, m.line) {
            tracing::error!(target: "dbaudit::deadletter", "{err:#}");
            self.failure.get_or_insert(format!("{err:#}"));
        }
        self.metrics.records_dead_lettered.inc();
    }

    fn push(&mut self, e: Entry) {
        self.metrics.records_read.inc();
        for b in self.batcher.push(e) {
            self.ready.push_back(Work::new(b));
        }
    }

    fn accept(&mut self, item: InputItem) -> bool {
        match item {
            InputItem::Record(e) => self.push(Entry::from(*e)),
            InputItem::Entry(e) => self.push(*e),
            InputItem::Bad { raw, line, reason } => {
                self.metrics.records_read.inc();
                self.metrics.bad_lines.inc();
                let reason = format!("line {line}: {reason}");
                if let Err(err) =
                    self.dead
                        .write(serde_json::Value::String(raw), &reason, 0, Some(line))
                {
                    self.failure.get_or_insert(format!("{err:#}"));
                }
                self.metrics.records_dead_lettered.inc();
            }
            InputItem::Failed(e) => {
                tracing::error!(target: "dbaudit::input", "{e}");
                self.failure.get_or_insert(e);
                return false;
            }
        }
        true
    }

    fn flush(&mut self) {
        if let Some(b) = self.batcher.take() {
            self.ready.push_back(Work::new(b));
        }
    }

    fn start(&mut self, work: Work) -> InFlight {
        let batch = work.records.clone();
        let attempt = work.attempt;
        self.inflight_work = Some(work);
        let w = self.worker.clone();
        Box::pin(async move {
            match w.call(move |p| p.deliver(&batch, attempt)).await {
                Ok(r) => r,
                Err(e) => Err(Trapped(format!("{e:#}"))),
            }
        })
    }

    fn finish(&mut self, mut work: Work, result: Result<Delivery, Trapped>) {
        let verdict = match result {
            Ok(v) => v,
            Err(t) => {
                work.traps += 1;
                if work.traps >= self.cfg.delivery.max_traps_per_batch {
                    let why = format!("plugin trapped {} times on this batch: {}", work.traps, t.0);
                    for m in &work.metas {
                        self.dead_letter(m, &why, work.attempt);
                    }
                } else {
                    tracing::warn!(target: "dbaudit::pipeline", records = work.len(), "retrying the batch after a plugin trap");
                    self.metrics.records_retried.add(work.len() as u64);
                    self.ready.push_front(work);
                }
                return;
            }
        };
        let out = interpret(work.len(), &verdict);
        self.metrics.records_delivered.add(out.delivered);
        for (reason, n) in &out.filtered {
            self.metrics.add_filtered(reason, *n);
        }
        for (i, reason) in &out.dead {
            self.dead_letter(&work.metas[*i], reason, work.attempt);
        }
        if let Some(retry) = out.retry {
            let next = work.attempt + 1;
            let bound = self.plan.retry_attempts + 2;
            let items = Work {
                records: Arc::new(subset(&work.records, &retry.indices)),
                metas: retry
                    .indices
                    .iter()
                    .map(|&i| work.metas[i].clone())
                    .collect(),
                attempt: next,
                traps: 0,
            };
            if next > bound {
                let why = format!(
                    "gave up after {} attempts (host safety bound): {}",
                    work.attempt, retry.reason
                );
                for m in &items.metas {
                    self.dead_letter(m, &why, work.attempt);
                }
                return;
            }
            tracing::info!(
                target: "dbaudit::pipeline",
                records = items.len(),
                after_ms = retry.after_ms,
                attempt = next,
                "retry scheduled: {}",
                retry.reason
            );
            self.metrics.records_retried.add(items.len() as u64);
            // Any plugin may be loaded: a wild after-ms must not overflow the clock.
            let wait = Duration::from_millis(retry.after_ms.min(MAX_RETRY_WAIT_MS));
            let due = Instant::now()
                .checked_add(wait)
                .unwrap_or_else(Instant::now);
            self.retries.push((due, items));
        }
    }

    fn promote_due_retries(&mut self) {
        let now = Instant::now();
        let mut i = 0;
        while i < self.retries.len() {
            if self.retries[i].0 <= now {
                let (_, w) = self.retries.swap_remove(i);
                self.ready.push_back(w);
            } else {
                i += 1;
            }
        }
    }

    async fn run(&mut self, opts: RunOptions) {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, mut rx) = mpsc::channel::<InputItem>(4096);
        match opts.source {
            Source::Configured => input::spawn(&self.cfg.input, tx, stop.clone()),
            Source::Items(items) => {
                tokio::spawn(async move {
                    for it in items {
                        if tx.send(it).await.is_err() {
                            break;
                        }
                    }
                });
            }
        }
        let mut shutdown = opts.shutdown;
        let mut input_open = true;
        let mut draining: Option<TInstant> = None;
        let mut inflight: Option<InFlight> = None;
        loop {
            self.promote_due_retries();
            if inflight.is_none() {
                if let Some(w) = self.ready.pop_front() {
                    inflight = Some(self.start(w));
                }
            }
            if !input_open
                && self.batcher.is_empty()
                && self.ready.is_empty()
                && self.retries.is_empty()
                && inflight.is_none()
            {
                break;
            }
            let batch_due = self
                .batcher
                .deadline()
                .map(TInstant::from_std)
                .unwrap_or_else(far);
            let retry_due = self
                .retries
                .iter()
                .map(|(t, _)| *t)
                .min()
                .map(TInstant::from_std)
                .unwrap_or_else(far);
            tokio::select! {
                _ = wait_shutdown(&mut shutdown), if draining.is_none() => {
                    let grace = self.cfg.delivery.shutdown_grace;
                    tracing::info!(target: "dbaudit::pipeline", grace_s = grace.as_secs_f64(), "shutting down: flushing");
                    stop.store(true, Ordering::Relaxed);
                    // Close first, then take along everything the input handed over: nothing
                    // sent in between can fall through the cracks.
                    rx.close();
                    while let Some(item) = rx.recv().await {
                        self.accept(item);
                    }
                    input_open = false;
                    self.flush();
                    draining = Some(TInstant::now() + grace);
                }
                // Backpressure: read on only while few batches wait for the plugin, so memory
                // stays bounded however fast the input is.
                item = rx.recv(), if input_open && self.ready.len() < MAX_READY => match item {
                    Some(item) => {
                        if !self.accept(item) {
                            input_open = false;
                            self.flush();
                        }
                    }
                    None => {
                        input_open = false;
                        self.flush();
                    }
                },
                _ = sleep_until(batch_due), if !self.batcher.is_empty() => self.flush(),
                _ = sleep_until(retry_due), if !self.retries.is_empty() => self.promote_due_retries(),
                result = async { inflight.as_mut().unwrap().await }, if inflight.is_some() => {
                    inflight = None;
                    let work = self.inflight_work.take().expect("the batch of the call");
                    self.finish(work, result);
                }
                _ = sleep_until(draining.unwrap_or_else(far)), if draining.is_some() => {
                    let why = format!(
                        "shutdown: not delivered within the {:.0}s grace period",
                        self.cfg.delivery.shutdown_grace.as_secs_f64()
                    );
                    tracing::warn!(target: "dbaudit::pipeline", "{why}; dead-lettering what is left");
                    let mut left: Vec<Work> = self.ready.drain(..).collect();
                    if inflight.take().is_some() {
                        tracing::warn!(target: "dbaudit::pipeline", "a plugin call was still running; its batch goes to the dead letter too (it may also have been delivered)");
                        if let Some(w) = self.inflight_work.take() {
                            left.push(Work { attempt: w.attempt + 1, ..w });
                        }
                    }
                    left.extend(self.retries.drain(..).map(|(_, w)| w));
                    for w in left {
                        for m in &w.metas {
                            self.dead_letter(m, &why, w.attempt.saturating_sub(1));
                        }
                    }
                    break;
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
    }
}
