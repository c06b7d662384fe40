//! The root context: compiles the plugin's policy for its role, owns the worker's jobs, and
//! runs what only a root may (sending mirror copies and audit batches, hearing their answers).

use std::rc::Rc;
use std::time::Duration;

use meshsight_policy::plugin::{PluginPolicy, Role};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use crate::allowlist::AllowlistJob;
use crate::audit::AuditJob;
use crate::host::{self, ConnectionCache};
use crate::mirror::MirrorJob;
use crate::stream::Stream;

/// The jobs of one plugin on one worker, shared by its streams.
pub(crate) struct Jobs {
    pub(crate) allowlist: Option<AllowlistJob>,
    pub(crate) mirror: Option<MirrorJob>,
    pub(crate) audit: Option<AuditJob>,
    pub(crate) connections: ConnectionCache,
}

#[derive(Default)]
pub(crate) struct Root {
    jobs: Option<Rc<Jobs>>,
}

impl Root {
    fn shut_down(&mut self) {
        if let Some(audit) = self.jobs.take().as_ref().and_then(|j| j.audit.as_ref()) {
            audit.shut_down();
        }
    }
}

impl Context for Root {
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

    fn on_done(&mut self) -> bool {
        self.shut_down();
        true
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let root_id = host::plugin_root_id();
        let Some(role) = Role::from_root_id(&root_id) else {
            log::error!(
                "meshsight: unknown root id {root_id:?}: use meshsight (all jobs in one pass), \
                 meshsight_allowlist, meshsight_mirror or meshsight_audit"
            );
            return false;
        };
        let config = host::plugin_configuration();
        let policy = match PluginPolicy::from_json(role, &config) {
            Ok(p) => p,
            Err(e) => {
                log::error!("meshsight: invalid policy, refusing it: {e}");
                return false;
            }
        };
        // A reconfigured plugin counts what its old queue still holds before it goes.
        self.shut_down();
        let now = host::now_nanos();
        let summary = policy.summary();
        let audit = policy.audit.map(|p| AuditJob::new(p, now / 1_000_000));
        let idle_tick = audit
            .as_ref()
            .and_then(AuditJob::tick_period)
            .unwrap_or(Duration::ZERO);
        host::set_tick_period(idle_tick);
        self.jobs = Some(Rc::new(Jobs {
            allowlist: policy.allowlist.map(AllowlistJob::new),
            mirror: policy.mirror.map(|p| MirrorJob::new(p, idle_tick)),
            audit,
            connections: ConnectionCache::default(),
        }));
        log::info!("meshsight: policy loaded ({root_id:?}: {summary})");
        true
    }

    fn on_tick(&mut self) {
        let Some(jobs) = &self.jobs else { return };
        let now = host::now_nanos();
        if let Some(mirror) = &jobs.mirror {
            mirror.send_queued(now);
        }
        if let Some(audit) = &jobs.audit {
            audit.pump(now / 1_000_000);
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Without a policy (Envoy never asks then: a refused configuration stops the plugin)
        // the stream refuses requests; returning `None` would abort the VM.
        Some(Box::new(Stream::new(self.jobs.clone())))
    }
}
