//! The root context: compiles the plugin's policy for its role, owns the worker's jobs and
//! counters, and runs what only a root may (sending mirror copies and audit batches, hearing
//! their answers, flushing the counters on its tick).

use meshsight_policy::error::Quoted;
use std::rc::Rc;

use meshsight_host_abi::callbacks::RootContext;
use meshsight_policy::plugin::{PluginPolicy, Role};

use crate::allowlist::AllowlistJob;
use crate::audit::AuditJob;
use crate::host::{self, ConnectionCache, Stats};
use crate::mirror::MirrorJob;
use crate::stream::Stream;

/// The jobs of one plugin on one worker, shared by its streams.
pub(crate) struct Jobs {
    pub(crate) allowlist: Option<AllowlistJob>,
    pub(crate) mirror: Option<MirrorJob>,
    pub(crate) audit: Option<AuditJob>,
    pub(crate) connections: ConnectionCache,
    /// The jobs' counters, moved in memory by the streams and flushed by the root's tick.
    pub(crate) stats: Stats,
}

pub(crate) struct Root {
    /// This root context's id: made current again after acting on a held stream.
    id: u32,
    jobs: Option<Rc<Jobs>>,
}

impl Root {
    /// The root context `id`, before its configuration.
    pub(crate) fn new(id: u32) -> Root {
        Root { id, jobs: None }
    }

    /// Counts what the audit queue still holds as dropped and hands every count to the host:
    /// the jobs are going away (or being replaced), and nothing may disappear uncounted.
    fn shut_down(&mut self) {
        let Some(jobs) = self.jobs.take() else { return };
        if let Some(audit) = &jobs.audit {
            audit.shut_down();
        }
        jobs.stats.flush();
    }
}

/// The callbacks `meshsight_host_abi`'s exports deliver to a root context.
impl RootContext for Root {
    type Stream = Stream;

    fn new(context_id: u32) -> Root {
        Root::new(context_id)
    }

    fn id(&self) -> u32 {
        self.id
    }

    /// The answer to one of this root's HTTP calls (a mirror copy or an audit batch).
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let Some(jobs) = &self.jobs else { return };
        let status = host::call_status(num_headers);
        let now = host::now_nanos();
        if let Some(audit) = &jobs.audit {
            if audit.answered(token_id, status, body_size, now / 1_000_000) {
                return;
            }
        }
        if let Some(mirror) = &jobs.mirror {
            mirror.answered(token_id, status, now);
        }
    }

    /// The plugin is going away: `true`, nothing is left to wait for.
    fn on_done(&mut self) -> bool {
        self.shut_down();
        true
    }

    /// Compiles the plugin's policy for the role its root id names; `false` refuses it.
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let root_id = host::plugin_root_id();
        let Some(role) = Role::from_root_id(&root_id) else {
            log!(
                Error,
                "meshsight: unknown root id {}: use meshsight (all jobs in one pass), \
                 meshsight_allowlist, meshsight_mirror or meshsight_audit",
                Quoted(&root_id)
            );
            return false;
        };
        let config = host::plugin_configuration();
        let policy = match PluginPolicy::from_json(role, &config) {
            Ok(p) => p,
            Err(e) => {
                log!(Error, "meshsight: invalid policy, refusing it: {e}");
                return false;
            }
        };
        // A reconfigured plugin counts what its old queue still holds before it goes.
        self.shut_down();
        let now = host::now_nanos();
        let summary = policy.summary();
        let stats = Stats::default();
        let audit = policy
            .audit
            .map(|p| AuditJob::new(p, &stats, now / 1_000_000));
        // One schedule for the root: the counters' flush, or the audit's deliveries when they
        // need it sooner (the mirror's send tick comes and goes on top of it).
        let idle_tick = audit
            .as_ref()
            .and_then(AuditJob::tick_period)
            .map_or(host::FLUSH_PERIOD, |t| t.min(host::FLUSH_PERIOD));
        host::set_tick_period(idle_tick);
        self.jobs = Some(Rc::new(Jobs {
            allowlist: policy.allowlist.map(|p| AllowlistJob::new(p, &stats)),
            mirror: policy.mirror.map(|p| MirrorJob::new(p, &stats, idle_tick)),
            audit,
            connections: ConnectionCache::default(),
            stats,
        }));
        log!(
            Info,
            "meshsight: policy loaded ({}: {summary})",
            Quoted(&root_id)
        );
        true
    }

    /// Sends what is queued, lets go holds that timed out and flushes the counters.
    fn on_tick(&mut self) {
        let Some(jobs) = &self.jobs else { return };
        // The clock only for a job that sends: a tick that only flushes counters needs none.
        let now = if jobs.mirror.is_some() || jobs.audit.is_some() {
            host::now_nanos()
        } else {
            0
        };
        if let Some(mirror) = &jobs.mirror {
            mirror.send_queued(now);
            mirror.let_go_expired(now, self.id);
        }
        if let Some(audit) = &jobs.audit {
            audit.pump(now / 1_000_000);
        }
        jobs.stats.flush();
    }

    /// A stream of this root. Without a policy (Envoy never asks then: a refused
    /// configuration stops the plugin) the stream refuses requests.
    fn create_http_context(&self, context_id: u32) -> Stream {
        Stream::new(self.jobs.clone(), context_id)
    }
}
