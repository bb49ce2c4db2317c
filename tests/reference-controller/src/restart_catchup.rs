//! Incident 000: N parents, each reconcile finding its children by scanning every child
//! in the cache, one worker; the controller is restarted mid-run (a fresh client, empty
//! caches, the initial LISTs again) and catches up. `--fixed` finds children through an
//! index and runs several workers.
//!
//! Each reconcile writes the parent's child count to a `<parent>-status` object by
//! server-side apply (a PATCH); status objects are not watched, so there is no feedback.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    api::{Patch, PatchParams},
    runtime::{controller, controller::Action, watcher, Controller},
    Api, ResourceExt,
};

use crate::{
    children::{Children, PARENT_LABEL},
    client::{self, Http},
    error::{until_reconciled, Error},
    ledger::{self, Ledger, Record},
    objects,
    reconcile::{ReconcileError, Span},
    Scenario,
};

/// Workers of the fixed controller (the original runs one).
const FIXED_WORKERS: u16 = 4;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Parent objects.
    #[arg(long, default_value_t = 30)]
    parents: usize,
    /// Children per parent.
    #[arg(long, default_value_t = 100)]
    children: usize,
    /// Reconciles before the restart (default: half the parents).
    #[arg(long)]
    restart_after: Option<usize>,
    /// Find children through an index, with several workers.
    #[arg(long)]
    fixed: bool,
}

struct Ctx {
    api: Api<ConfigMap>,
    children: Children,
    ledger: Ledger,
    slug: &'static str,
    /// Reconciles begun; those past `stop_after` never begin (the process is dying).
    begun: AtomicUsize,
    stop_after: Option<usize>,
}

pub async fn run(s: &Scenario, args: &Args) -> Result<(), Error> {
    let (slug, user_agent) = if args.fixed {
        ("restart-catchup-fixed", "refctl-restart-catchup/fixed")
    } else {
        ("restart-catchup", "refctl-restart-catchup")
    };
    s.started(user_agent);
    let client = client::build(&s.kubeconfig, Http::H1, user_agent, None, &s.ledger).await?;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let parent_name = |i: usize| format!("{slug}-{i}");
    let parents = (0..args.parents).map(|i| {
        objects::config_map(
            &parent_name(i),
            &[("refctl", slug), ("role", "parent")],
            &[],
        )
    });
    let children = (0..args.parents).flat_map(|i| {
        (0..args.children).map(move |j| {
            objects::config_map(
                &format!("{slug}-{i}-child-{j}"),
                &[
                    ("refctl", slug),
                    ("role", "child"),
                    (PARENT_LABEL, &parent_name(i)),
                ],
                &[("revision", objects::filler(128))],
            )
        })
    });
    objects::create_all(&api, parents.chain(children).collect())
        .await
        .map_err(Error::Setup)?;
    drop(api);

    let restart_after = args.restart_after.unwrap_or(args.parents / 2);
    run_controller(s, args, slug, user_agent, Some(restart_after)).await?;
    s.ledger.write(&Record::Restart {
        time: ledger::now(),
    });
    run_controller(s, args, slug, user_agent, None).await
}

/// One controller lifetime: until `stop_after` reconciles (then it is dropped, as a
/// killed process), or until every parent is reconciled once.
async fn run_controller(
    s: &Scenario,
    args: &Args,
    slug: &'static str,
    user_agent: &str,
    stop_after: Option<usize>,
) -> Result<(), Error> {
    let client = client::build(&s.kubeconfig, Http::H1, user_agent, None, &s.ledger).await?;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let workers = if args.fixed { FIXED_WORKERS } else { 1 };
    let ctx = Arc::new(Ctx {
        children: Children::start(api.clone(), &objects::selector(slug, "child"), args.fixed),
        api: api.clone(),
        ledger: s.ledger.clone(),
        slug,
        begun: AtomicUsize::new(0),
        stop_after,
    });
    let run = Controller::new(
        api,
        watcher::Config::default().labels(&objects::selector(slug, "parent")),
    )
    .with_config(controller::Config::default().concurrency(workers))
    .run(reconcile, |_, _, _| Action::await_change(), ctx);
    until_reconciled(
        run,
        stop_after.unwrap_or(args.parents),
        Duration::from_secs(120),
    )
    .await
}

async fn reconcile(parent: Arc<ConfigMap>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    if ctx
        .stop_after
        .is_some_and(|n| ctx.begun.fetch_add(1, Ordering::SeqCst) >= n)
    {
        return std::future::pending().await;
    }
    let name = parent.name_any();
    let span = Span::start(&ctx.ledger, &name);
    ctx.children.ready().await;
    let (children, orphans) = ctx.children.count(&name);
    let mut data = vec![("children", children.to_string())];
    data.extend(orphans.map(|n| ("orphans", n.to_string())));
    let status = objects::config_map(
        &format!("{name}-status"),
        &[("refctl", ctx.slug), ("role", "status")],
        &data,
    );
    let applied = ctx
        .api
        .patch(
            &format!("{name}-status"),
            &PatchParams::apply("refctl").force(),
            &Patch::Apply(&status),
        )
        .await;
    span.finish(applied)
}
