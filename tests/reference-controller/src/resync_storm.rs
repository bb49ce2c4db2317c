//! Incident 001: a periodic resync with no event filtering, each reconcile a labelled
//! LIST. kube-rs has no informer resyncPeriod, so an interval drives
//! `reconcile_all_on`: every tick re-queues every cached object, with no API call; each
//! reconcile then LISTs with a labelSelector, resourceVersion unset (a consistent read)
//! or `0` (the watch cache).

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    api::ListParams,
    runtime::{controller::Action, watcher, Controller},
    Api, ResourceExt,
};

use crate::{
    client::{self, Http},
    error::{until_reconciled, Error},
    ledger::{self, Ledger, Record},
    objects,
    reconcile::{ReconcileError, Span},
    Scenario,
};

/// The resourceVersion each reconcile's LIST sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Rv {
    /// Unset: a consistent read.
    Unset,
    /// `0`: any version, from the watch cache.
    #[value(name = "0")]
    Zero,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Objects the controller watches (and reconciles on every resync).
    #[arg(long, default_value_t = 50)]
    objects: usize,
    /// Seconds between resyncs.
    #[arg(long, default_value_t = 3.0)]
    interval: f64,
    /// Resync ticks before the controller stops.
    #[arg(long, default_value_t = 3)]
    ticks: u32,
    /// The resourceVersion of each reconcile's LIST.
    #[arg(long, value_enum, default_value = "unset")]
    rv: Rv,
}

impl Args {
    fn slug(&self) -> &'static str {
        match self.rv {
            Rv::Unset => "resync-storm-rv-unset",
            Rv::Zero => "resync-storm-rv-0",
        }
    }
}

struct Ctx {
    api: Api<ConfigMap>,
    list: ListParams,
    ledger: Ledger,
}

pub async fn run(s: &Scenario, args: &Args) -> Result<(), Error> {
    let slug = args.slug();
    let user_agent = match args.rv {
        Rv::Unset => "refctl-resync-storm/rv-unset",
        Rv::Zero => "refctl-resync-storm/rv-0",
    };
    s.started(user_agent);
    let client = client::build(&s.kubeconfig, Http::H1, user_agent, None, &s.ledger).await?;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let selector = objects::selector(slug, "item");
    objects::create_items(&api, slug, args.objects, 512)
        .await
        .map_err(Error::Setup)?;

    let mut list = ListParams::default().labels(&selector);
    if args.rv == Rv::Zero {
        list = list.match_any();
    }
    let controller = Controller::new(api.clone(), watcher::Config::default().labels(&selector));
    let store = controller.store();
    let period = Duration::from_secs_f64(args.interval);
    let ledger = s.ledger.clone();
    let ticks = futures::stream::iter(1..=args.ticks).then(move |tick| {
        let (store, ledger) = (store.clone(), ledger.clone());
        async move {
            tokio::time::sleep(period).await;
            ledger.write(&Record::ResyncTick {
                time: ledger::now(),
                tick,
                objects: store.state().len(),
            });
        }
    });
    let ctx = Arc::new(Ctx {
        api,
        list,
        ledger: s.ledger.clone(),
    });
    let run =
        controller
            .reconcile_all_on(ticks)
            .run(reconcile, |_, _, _| Action::await_change(), ctx);
    let expected = args.objects * (args.ticks as usize + 1);
    let limit = period * (args.ticks + 1) + Duration::from_secs(60);
    until_reconciled(run, expected, limit).await
}

async fn reconcile(object: Arc<ConfigMap>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    let name = object.name_any();
    let span = Span::start(&ctx.ledger, &name);
    let listed = ctx.api.list(&ctx.list).await;
    span.finish(listed)
}
