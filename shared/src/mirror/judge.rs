//! From the request as the filter reads it to the mirror's selection: signatures over the head
//! (and the body when one wants it), then the first rule whose selector matches the request
//! normalized once ([`RequestFacts`], the same facts the allowlist judges). The rate cap that
//! turns a selection into the final decision is the worker's ([`super::rate`]).

use super::signatures::{CleanPieces, RequestView, SignatureHits};
use super::{sampling, Action, MirrorPolicy, Peer, RequestFacts, TargetId};
use crate::decision::MirrorReason;
use crate::headers::HeaderBlock;

/// What the policy looks at in a request head.
#[derive(Debug, Clone, Copy)]
pub struct MirrorRequest<'a> {
    /// `:method`.
    pub method: &'a str,
    /// `:path` as received.
    pub path: &'a str,
    /// `:authority` (or `host`).
    pub authority: &'a str,
    /// All request headers, the client-supplied decision header already removed.
    pub headers: &'a HeaderBlock,
    /// Connection peer.
    pub peer: Peer<'a>,
    /// The request already normalized for the allowlist, when the caller has it (with a peer
    /// that carries what this policy's selectors look at): selection reuses it rather than
    /// normalizing the request a second time.
    pub normalized: Option<&'a RequestFacts<'a>>,
}

impl<'a> MirrorRequest<'a> {
    fn view(&self) -> RequestView<'a> {
        RequestView {
            method: self.method,
            path: self.path,
            headers: self.headers,
        }
    }

    /// The `x-request-id` header, the sampling key.
    pub fn request_id(&self) -> Option<&'a str> {
        self.headers.value("x-request-id")
    }

    /// The request normalized once for the selectors (the scheme, for the default port, is
    /// read from `:scheme` when the headers carry it).
    pub fn facts(&self) -> RequestFacts<'a> {
        let scheme = self.headers.value(":scheme").unwrap_or("");
        RequestFacts::new(
            self.method,
            self.path,
            self.authority,
            scheme,
            self.headers,
            self.peer,
        )
    }
}

/// Which target (if any) a request goes to and why, before the rate cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Chosen target when the request is selected.
    pub target: Option<TargetId>,
    /// `Signature`, `Rule`, `Sample` (selected) or `NotSelected`.
    pub reason: MirrorReason,
    /// Name of the rule that decided.
    pub rule: Option<String>,
    /// Categories of the matched signature rules.
    pub signatures: Vec<String>,
    /// Ids of the matched signature rules.
    pub signature_rules: Vec<String>,
}

impl Selection {
    /// Whether the policy wants a copy.
    pub fn selected(&self) -> bool {
        self.target.is_some()
    }
}

impl MirrorPolicy {
    /// An empty hit set for this policy's signatures.
    pub fn new_hits(&self) -> SignatureHits {
        self.signatures.new_hits()
    }

    /// Matches signatures in the request's path, query and headers.
    pub fn scan_head(&self, req: &MirrorRequest<'_>, hits: &mut SignatureHits) {
        if self.signature_target.is_some() {
            self.signatures.scan_head(&req.view(), hits);
        }
    }

    /// [`MirrorPolicy::scan_head`] for a worker that scans request after request: pieces it
    /// found clean before are not scanned again (`clean` must belong to this policy's worker).
    pub fn scan_head_remembering(
        &self,
        req: &MirrorRequest<'_>,
        hits: &mut SignatureHits,
        clean: &mut CleanPieces,
    ) {
        if self.signature_target.is_some() {
            self.signatures
                .scan_head_remembering(&req.view(), hits, Some(clean));
        }
    }

    /// Whether the body of this request should be read (up to `max_body_bytes`) before
    /// deciding. `false` when the head already decided a copy (a signature matched) and the body
    /// cannot change that, or no enabled signature looks in bodies.
    pub fn wants_body(&self, req: &MirrorRequest<'_>, hits: &SignatureHits) -> bool {
        self.max_body_bytes > 0
            && self.signature_target.is_some()
            && !hits.any()
            && self.signatures.wants_body(&req.view())
    }

    /// Matches signatures in the first `max_body_bytes` of the body (longer input is cut).
    pub fn scan_body(&self, req: &MirrorRequest<'_>, body: &[u8], hits: &mut SignatureHits) {
        if self.signature_target.is_some() {
            let body = &body[..body.len().min(self.max_body_bytes)];
            self.signatures.scan_body(&req.view(), body, hits);
        }
    }

    /// Decides, from signature hits and then the first matching rule, where a copy goes
    /// (normalizes the request, then [`MirrorPolicy::select_facts`]).
    pub fn select(&self, req: &MirrorRequest<'_>, hits: &SignatureHits) -> Selection {
        // Normalize only when a rule will look: a signature decides alone, and no rules means
        // nothing else can select.
        if let Some(selection) = self.signature_selection(hits) {
            return selection;
        }
        if self.rules.is_empty() {
            return Selection {
                target: None,
                reason: MirrorReason::NotSelected,
                rule: None,
                signatures: Vec::new(),
                signature_rules: Vec::new(),
            };
        }
        match req.normalized {
            Some(facts) => self.select_facts(facts, hits),
            None => self.select_facts(&req.facts(), hits),
        }
    }

    /// A signature decides alone: the selection when one matched and there is a target.
    fn signature_selection(&self, hits: &SignatureHits) -> Option<Selection> {
        let target = self.signature_target.filter(|_| hits.any())?;
        Some(Selection {
            target: Some(target),
            reason: MirrorReason::Signature,
            rule: None,
            signatures: self.signatures.hit_names(hits),
            signature_rules: self.signatures.hit_rule_ids(hits),
        })
    }

    /// Decides, from signature hits and then the first rule whose selector matches the request
    /// normalized once into `facts` (the same facts the allowlist judges), where a copy goes.
    pub fn select_facts(&self, facts: &RequestFacts<'_>, hits: &SignatureHits) -> Selection {
        if let Some(selection) = self.signature_selection(hits) {
            return selection;
        }
        let Some(rule) = self
            .rules
            .iter()
            .find(|r| r.sources.matches(&facts.peer) && r.request.matches(facts))
        else {
            return Selection {
                target: None,
                reason: MirrorReason::NotSelected,
                rule: None,
                signatures: Vec::new(),
                signature_rules: Vec::new(),
            };
        };
        let (target, reason) = match rule.action {
            Action::Always => (rule.target, MirrorReason::Rule),
            Action::Sample(fraction)
                if sampling::sampled(facts.headers.value("x-request-id"), fraction) =>
            {
                (rule.target, MirrorReason::Sample)
            }
            Action::Sample(_) | Action::Never => (None, MirrorReason::NotSelected),
        };
        Selection {
            target,
            reason: if target.is_some() {
                reason
            } else {
                MirrorReason::NotSelected
            },
            rule: Some(rule.name.clone()),
            signatures: Vec::new(),
            signature_rules: Vec::new(),
        }
    }
}
