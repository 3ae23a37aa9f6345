//! Reconciliation of a create whose outcome is in doubt: before a create is sent again after an ambiguous
//! failure (the connection broke after the request left, a timeout, a 5xx without the platform's code), the
//! call looks for what the lost attempt may have made, and returns it when found, so a task is never created
//! twice and never reported lost when it exists.
//!
//! Sans-IO like the rest of the call machine: a [`Search`] hands out lookups (`http::Request`s) and reads their
//! answers, and ends in [`Verdict::Found`] (with the answer the platform would have given the create) or
//! [`Verdict::Absent`]. The call machine drives it with the call's own token, retries and deadline.
//!
//! An upgrade task is looked up in the task list: same kind (firmware or software), same targets, the package's
//! version in `extendPara.fileVersion` when both sides carry one, and created no earlier than the call began on
//! the platform's clock (read from the answers' `Date` headers, with a margin for their one-second resolution).
//! Batch tasks cannot be listed, so a batch create in doubt stays in doubt.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use iot_model::{CategoryInfo, CreateUpgradeTask, OperateDevices, OperateType, OperationInfo, OperationPage};

use crate::call::PageWalker;
use crate::client::BearerAuth;
use crate::endpoint::{Endpoint, Reconcile};
use crate::wire::BaseUrl;
use crate::{CreateFirmwareUpgradeTask, QueryPackage, QueryUpgradeTaskList};

/// Most task-list pages one search reads; the list is filtered by a target device, so this is generous.
const MAX_PAGES: u32 = 100;

/// How far before the call's start (on the platform's clock) a task may have been created and still be its:
/// the `Date` header has a resolution of one second, and the platform's clocks may differ by a little.
pub(crate) const CLOCK_MARGIN: Duration = Duration::from_secs(2);

/// What a search concluded.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// The create's answer as the platform would have given it: the thing exists.
    Found(http::Response<Vec<u8>>),
    /// Nothing the create could have made exists: sending it again cannot make a second one.
    Absent,
}

/// The next thing a search needs.
#[derive(Debug)]
pub(crate) enum Next {
    /// Send this lookup and report its answer.
    Lookup(http::Request<Vec<u8>>),
    /// The search is over.
    Done(Verdict),
}

/// A search that could not conclude (a lookup failed or could not be built, the task list did not add up):
/// the create stays in doubt. The lookup's own error is not kept: the call reports the create's failure.
#[derive(Debug)]
pub(crate) struct Inconclusive;

/// A search for what a create may have made.
#[derive(Debug)]
pub(crate) struct Search {
    body: CreateUpgradeTask,
    kind: OperateType,
    since: SystemTime,
    step: Step,
}

#[derive(Debug)]
enum Step {
    /// Ask for the package, for its version.
    Package,
    /// Walk the task list.
    Tasks { version: Option<String>, walker: Box<PageWalker<QueryUpgradeTaskList>> },
    /// Concluded.
    Done,
}

impl Search {
    /// A search for the create `request` that began at `since` on the platform's clock, or `None` when the
    /// endpoint has no reconciliation.
    pub(crate) fn new<E: Endpoint>(request: &E, since: SystemTime) -> Option<Self> {
        let Some(Reconcile::UpgradeTask) = E::META.reconcile else { return None };
        // The spec guarantees the body is a CreateUpgradeTask (xtask checks it); reading it back through serde
        // keeps this module free of the generic endpoint type.
        let body: CreateUpgradeTask =
            serde_json::to_vec(request.body()).ok().and_then(|b| serde_json::from_slice(&b).ok())?;
        let kind = if E::META.id == CreateFirmwareUpgradeTask::META.id {
            OperateType::FirmwareUpgrade
        } else {
            OperateType::SoftwareUpgrade
        };
        Some(Self {
            body,
            kind,
            since: since.checked_sub(CLOCK_MARGIN).unwrap_or(SystemTime::UNIX_EPOCH),
            step: Step::Package,
        })
    }

    /// The next lookup, built with the call's credentials, or the verdict.
    pub(crate) fn next(&mut self, base: &BaseUrl, auth: BearerAuth<'_>) -> Result<Next, Inconclusive> {
        let request = match &mut self.step {
            Step::Package => QueryPackage::new(self.body.file_id.clone()).try_into_http_request(base, Some(auth)),
            Step::Tasks { walker, .. } => match walker.next_request() {
                Some(query) => query.try_into_http_request(base, Some(auth)),
                None => {
                    let complete = matches!(walker.outcome(), Some(Ok(_)));
                    self.step = Step::Done;
                    return if complete { Ok(Next::Done(Verdict::Absent)) } else { Err(Inconclusive) };
                }
            },
            Step::Done => return Err(Inconclusive),
        };
        request.map(Next::Lookup).map_err(|_| Inconclusive)
    }

    /// Reads the answer to the last lookup; `Some` when it settles the search.
    pub(crate) fn handle<B: AsRef<[u8]>>(
        &mut self,
        response: &http::Response<B>,
    ) -> Result<Option<Verdict>, Inconclusive> {
        match &mut self.step {
            Step::Package => {
                let package: CategoryInfo = QueryPackage::try_from_http_response(response).map_err(|_| Inconclusive)?;
                let walker = PageWalker::new(self.task_query(), MAX_PAGES).map_err(|_| Inconclusive)?;
                self.step = Step::Tasks { version: package.version, walker: Box::new(walker) };
                Ok(None)
            }
            Step::Tasks { version, walker } => {
                let page: OperationPage =
                    QueryUpgradeTaskList::try_from_http_response(response).map_err(|_| Inconclusive)?;
                walker.handle_page(&page).map_err(|_| Inconclusive)?;
                let version = version.clone();
                let found = page.data.iter().find(|task| self.is_ours(task, version.as_deref()));
                let Some(task) = found else { return Ok(None) };
                let answer = serde_json::json!({ "operationId": task.operation_id.as_str() });
                self.step = Step::Done;
                let body = serde_json::to_vec(&answer).map_err(|_| Inconclusive)?;
                Ok(Some(Verdict::Found(http::Response::new(body))))
            }
            Step::Done => Err(Inconclusive),
        }
    }

    /// The task list, narrowed to the create's kind and, when it names devices, to tasks on its first device.
    fn task_query(&self) -> QueryUpgradeTaskList {
        let mut query = QueryUpgradeTaskList::new().with_operation_type(self.kind.clone()).with_page_size(100);
        let targets = &self.body.targets;
        if let Some(device) = targets.devices.as_ref().and_then(|d| d.first()) {
            query = query.with_device_id(device.clone());
        }
        query
    }

    /// Whether `task` is what the create would have made.
    fn is_ours(&self, task: &OperationInfo, version: Option<&str>) -> bool {
        let created = task.create_time.map(|t| t.to_system_time());
        let version_matches = match (version, task.extend_para.as_ref().and_then(|e| e.get("fileVersion"))) {
            (Some(wanted), Some(iot_model::Json::String(have))) => wanted == have,
            _ => true,
        };
        task.operate_type.as_ref().is_none_or(|k| *k == self.kind)
            && created.is_some_and(|at| at >= self.since)
            && version_matches
            && task.targets.as_ref().is_some_and(|t| same_targets(&self.body.targets, t))
    }
}

/// Whether the task's targets are the ones asked for: the same devices and groups, in any order; the type,
/// model and manufacturer only when the request named them (the platform fills them in from the package).
fn same_targets(asked: &OperateDevices, task: &OperateDevices) -> bool {
    fn set<T: Ord + Clone>(v: &Option<Vec<T>>) -> BTreeSet<T> {
        v.iter().flatten().cloned().collect()
    }
    let named = |a: &Option<String>, t: &Option<String>| a.is_none() || a == t;
    set(&asked.devices) == set(&task.devices)
        && set(&asked.device_groups) == set(&task.device_groups)
        && named(&asked.device_type, &task.device_type)
        && named(&asked.model, &task.model)
        && named(&asked.manufacturer_name, &task.manufacturer_name)
}
