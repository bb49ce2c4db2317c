//! Incident 002: a controller whose every request passes a client-side token bucket
//! (kube-controller-manager's defaults: 20 qps, burst 30), given a burst of work larger
//! than the bucket: each object's reconcile GETs it and writes a status object, all
//! reconciles at once, so requests queue on the bucket and the rate pins at qps.

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    api::PostParams,
    runtime::{controller::Action, watcher, Controller},
    Api, ResourceExt,
};

use crate::{
    client::{self, Http, RateLimit},
    error::{until_reconciled, Error},
    ledger::Ledger,
    objects,
    reconcile::{ReconcileError, Span},
    Scenario,
};

const SLUG: &str = "throttled";
const USER_AGENT: &str = "refctl-throttled";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Client-side requests per second.
    #[arg(long, default_value_t = 20.0)]
    qps: f64,
    /// Client-side burst.
    #[arg(long, default_value_t = 30)]
    burst: u32,
    /// Objects to reconcile at once, two requests each.
    #[arg(long, default_value_t = 100)]
    objects: usize,
}

struct Ctx {
    api: Api<ConfigMap>,
    ledger: Ledger,
}

pub async fn run(s: &Scenario, args: &Args) -> Result<(), Error> {
    s.started(USER_AGENT);
    let limit = RateLimit {
        qps: args.qps,
        burst: args.burst,
    };
    let client = client::build(&s.kubeconfig, Http::H1, USER_AGENT, Some(limit), &s.ledger).await?;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    objects::create_items(&api, SLUG, args.objects, 256)
        .await
        .map_err(Error::Setup)?;

    let selector = objects::selector(SLUG, "item");
    let ctx = Arc::new(Ctx {
        api: api.clone(),
        ledger: s.ledger.clone(),
    });
    let run = Controller::new(api, watcher::Config::default().labels(&selector)).run(
        reconcile,
        |_, _, _| Action::await_change(),
        ctx,
    );
    // Two requests per object at qps, plus the watcher's LIST and WATCH.
    let secs = (2 * args.objects + 2) as f64 / args.qps;
    until_reconciled(
        run,
        args.objects,
        Duration::from_secs_f64(secs) + Duration::from_secs(60),
    )
    .await
}

/// GETs the object, then creates its status object (not watched, so no feedback).
async fn reconcile(object: Arc<ConfigMap>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    let name = object.name_any();
    let span = Span::start(&ctx.ledger, &name);
    let result = async {
        let current = ctx.api.get(&name).await?;
        let status = objects::config_map(
            &format!("{name}-status"),
            &[("refctl", SLUG), ("role", "status")],
            &[("seen", current.resource_version().unwrap_or_default())],
        );
        ctx.api.create(&PostParams::default(), &status).await
    }
    .await;
    span.finish(result)
}
