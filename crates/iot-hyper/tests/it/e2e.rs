//! End-to-end tests: the client against the real embedded simulator over loopback (HTTP, HTTPS, two-way TLS),
//! with assertions on what the platform holds afterwards and on the requests it received.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use iot_hyper::{Client, Clock, Error, Identity, Roots, TlsOptions, TransportConfig, TransportError};
use iot_model::{
    AccessToken, AppId, BatchTaskStatus, BatchTaskType, CreateUpgradeTask, DeviceCmdParam, DeviceCmdType, DeviceId,
    FileType, OperateDevices, OperateType, SubOperationInfo,
};
use iot_proto::retry::RetryPolicy;
use iot_proto::session::{SessionConfig, SessionState};
use iot_proto::{
    BaseUrl, BearerAuth, CreateFirmwareUpgradeTask, CreateSoftwareUpgradeTask, DeletePackage, Endpoint, QueryBatchTask,
    QueryPackage, QueryPackageList, QuerySubOperations, QueryTaskDetails, QueryUpgradeTask, QueryUpgradeTaskList,
};
use iot_sim::embedded::{EmbeddedOptions, EmbeddedSim, Transport};
use iot_sim::pki::TestPki;
use iot_sim::sim::{DEFAULT_APP_ID, SimConfig};

use crate::sim_support::{
    LOGIN, LOGOUT, REFRESH, SimTimeSleeper, UPGRADE, advance, bearer, biggest_kind, bounded, client, config,
    config_with, count_path, query_param, reboot, reboot_task, start,
};

/// The simulator's default access-token lifetime, plus a second: advancing simulated time by this expires the
/// token the client holds while its refresh token (a day) stays valid.
const PAST_TOKEN_LIFETIME: Duration = Duration::from_secs(3601);

fn code(err: &Error) -> Option<(u16, String)> {
    err.api().map(|api| (api.status.as_u16(), api.code.as_ref().map(|c| c.as_str().to_owned()).unwrap_or_default()))
}

fn app_id() -> AppId {
    AppId::new(DEFAULT_APP_ID).unwrap()
}

fn device_ids(subs: &[SubOperationInfo]) -> Vec<DeviceId> {
    subs.iter().map(|s| s.device_id.clone().unwrap()).collect()
}

#[tokio::test]
async fn every_endpoint_works_against_the_simulator() {
    bounded(async {
        let sim = start(SimConfig::default(), EmbeddedOptions::default().with_recording()).await;
        let client = client(&sim);

        // login
        assert_eq!(client.session_state().await, SessionState::NoToken);
        client.login().await.unwrap();
        assert_eq!(client.session_state().await, SessionState::Valid);
        let recorded = sim.take_recorded();
        assert_eq!((recorded.len(), count_path(&recorded, LOGIN)), (1, 1));

        // query_package_list: every firmware package the simulator holds, and nothing else.
        let (fw_devices, fw_package) = biggest_kind(&sim, FileType::FirmwarePackage);
        let (sw_devices, sw_package) = biggest_kind(&sim, FileType::SoftwarePackage);
        let firmware: Vec<_> = sim.with_sim(|s| {
            s.packages().iter().filter(|p| p.file_type == Some(FileType::FirmwarePackage)).cloned().collect()
        });
        let list = client
            .query_package_list(&QueryPackageList::new().with_file_type(FileType::FirmwarePackage).with_page_size(100))
            .await
            .unwrap();
        assert_eq!(list.total_count, Some(firmware.len() as u64));
        assert_eq!(list.data, firmware);

        // query_package, then delete_package on a package of the other kind: it is gone afterwards.
        let doomed = firmware.iter().find(|p| p.device_type != fw_package.device_type).unwrap().clone();
        let read = client.query_package(&QueryPackage::new(doomed.file_id.clone())).await.unwrap();
        assert_eq!(read, doomed);
        client.delete_package(&DeletePackage::new(doomed.file_id.clone())).await.unwrap();
        let after = client.query_package(&QueryPackage::new(doomed.file_id.clone())).await.unwrap_err();
        assert_eq!(code(&after), Some((404, "123002".to_owned())), "{after:?}");
        let again = client.delete_package(&DeletePackage::new(doomed.file_id.clone())).await.unwrap_err();
        assert_eq!(code(&again), Some((404, "123002".to_owned())), "{again:?}");
        let list = client
            .query_package_list(&QueryPackageList::new().with_file_type(FileType::FirmwarePackage).with_page_size(100))
            .await
            .unwrap();
        assert_eq!(list.total_count, Some(firmware.len() as u64 - 1));
        assert!(list.data.iter().all(|p| p.file_id != doomed.file_id));
        assert!(sim.with_sim(|s| s.packages().iter().all(|p| p.file_id != doomed.file_id)));

        // create_firmware_upgrade_task and create_software_upgrade_task, then read them back.
        let fw_targets: Vec<DeviceId> = fw_devices.into_iter().take(10).collect();
        let sw_targets: Vec<DeviceId> = sw_devices.into_iter().take(4).collect();
        let fw_op = client
            .create_firmware_upgrade_task(&CreateFirmwareUpgradeTask::new(CreateUpgradeTask::new(
                fw_package.file_id.clone(),
                OperateDevices::new().with_devices(fw_targets.clone()),
            )))
            .await
            .unwrap()
            .operation_id;
        let sw_op = client
            .create_software_upgrade_task(&CreateSoftwareUpgradeTask::new(CreateUpgradeTask::new(
                sw_package.file_id.clone(),
                OperateDevices::new().with_devices(sw_targets.clone()),
            )))
            .await
            .unwrap()
            .operation_id;
        assert_ne!(fw_op, sw_op);
        assert_eq!(sim.with_sim(|s| s.task_counts()), (2, 0));

        let info = client.query_upgrade_task(&QueryUpgradeTask::new(fw_op.clone())).await.unwrap();
        assert_eq!(info.operation_id, fw_op);
        assert_eq!(info.operate_type, Some(OperateType::FirmwareUpgrade));
        assert_eq!(info.targets.as_ref().and_then(|t| t.devices.clone()), Some(fw_targets.clone()));
        let sta = info.sta_result.unwrap();
        assert_eq!(sta.total, Some(10));
        assert_eq!(sta.wait + sta.processing + sta.success + sta.fail + sta.stop, 10);

        // query_upgrade_task_list: both tasks in creation order; the type filter keeps one.
        let tasks = client.query_upgrade_task_list(&QueryUpgradeTaskList::new()).await.unwrap();
        assert_eq!(tasks.total_count, Some(2));
        let ids: Vec<_> = tasks.data.iter().map(|t| t.operation_id.clone()).collect();
        assert_eq!(ids, vec![fw_op.clone(), sw_op.clone()]);
        let software = client
            .query_upgrade_task_list(&QueryUpgradeTaskList::new().with_operation_type(OperateType::SoftwareUpgrade))
            .await
            .unwrap();
        assert_eq!(software.total_count, Some(1));
        assert_eq!(software.data[0].operation_id, sw_op);
        assert_eq!(software.data[0].operate_type, Some(OperateType::SoftwareUpgrade));

        // query_sub_operations: one subtask per targeted device.
        let subs =
            client.query_sub_operations(&QuerySubOperations::new(fw_op.clone()).with_page_size(100)).await.unwrap();
        assert_eq!(subs.total_count, Some(10));
        assert_eq!(device_ids(&subs.data), fw_targets);

        // create_batch_task, query_batch_task, query_task_details.
        let batch_targets: Vec<DeviceId> = fw_targets.iter().take(5).cloned().collect();
        let task = reboot_task(
            "e2e reboot",
            DeviceCmdParam::new(DeviceCmdType::DeviceList, reboot()).with_device_list(batch_targets.clone()),
        );
        let task_id = client.create_batch_task(&task).await.unwrap().task_id;
        assert_eq!(sim.with_sim(|s| s.task_counts()), (2, 1));
        let batch = client.query_batch_task(&QueryBatchTask::new(task_id.clone())).await.unwrap();
        assert_eq!(batch.task_id, task_id);
        assert_eq!(batch.task_name.as_deref(), Some("e2e reboot"));
        assert_eq!(batch.task_type, Some(BatchTaskType::DeviceCmd));
        assert_eq!(batch.app_id, Some(app_id()));
        assert_eq!(batch.total_cnt, Some(5));
        assert!(matches!(batch.status, Some(BatchTaskStatus::Pending | BatchTaskStatus::Running)), "{batch:?}");
        let details = client.query_task_details(&QueryTaskDetails::new(task_id.clone())).await.unwrap();
        assert_eq!(details.total_count, Some(5));
        let detail_devices: Vec<String> = details
            .task_details
            .iter()
            .map(|d| d.param.as_ref().unwrap()["deviceId"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(detail_devices, batch_targets.iter().map(|d| d.as_str().to_owned()).collect::<Vec<_>>());

        // refreshToken: once the access token has expired on the platform, the next call is refused once,
        // the client trades its refresh token (no new login) and the call succeeds with the new token.
        let before = sim.take_recorded();
        let old_token = bearer(before.last().unwrap()).unwrap();
        advance(&sim, PAST_TOKEN_LIFETIME);
        let info = client.query_upgrade_task(&QueryUpgradeTask::new(sw_op.clone())).await.unwrap();
        assert_eq!(info.operation_id, sw_op);
        let recorded = sim.take_recorded();
        let paths: Vec<&str> = recorded.iter().map(|r| r.uri().path()).collect();
        let task_path = format!("{UPGRADE}/operations/{sw_op}");
        assert_eq!(paths, vec![task_path.as_str(), REFRESH, task_path.as_str()]);
        assert_eq!(bearer(&recorded[0]).as_deref(), Some(old_token.as_str()));
        let new_token = bearer(&recorded[2]).unwrap();
        assert_ne!(new_token, old_token);
        assert_eq!(client.session_state().await, SessionState::Valid);

        // logout: revokes the token on the platform and forgets it; the next call logs in again.
        client.logout().await.unwrap();
        assert_eq!(client.session_state().await, SessionState::NoToken);
        let recorded = sim.take_recorded();
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0].uri().path(), LOGOUT);
        let body: serde_json::Value = serde_json::from_slice(recorded[0].body()).unwrap();
        assert_eq!(body["accessToken"].as_str(), Some(new_token.as_str()));
        let probe = QueryUpgradeTaskList::new()
            .try_into_http_request(
                &BaseUrl::parse("http://sim.invalid").unwrap(),
                Some(BearerAuth { app_id: &app_id(), token: &AccessToken::new(new_token.clone()) }),
            )
            .unwrap();
        let answer = sim.with_sim(|s| {
            let now = s.now();
            s.handle(now, probe)
        });
        let refused = QueryUpgradeTaskList::try_from_http_response(&answer).unwrap_err();
        let refused = refused.api().unwrap();
        assert_eq!(refused.status.as_u16(), 403);
        assert_eq!(refused.code.as_ref().map(|c| c.as_str()), Some("1010005"));

        let tasks = client.query_upgrade_task_list(&QueryUpgradeTaskList::new()).await.unwrap();
        assert_eq!(tasks.total_count, Some(2));
        let recorded = sim.take_recorded();
        let paths: Vec<&str> = recorded.iter().map(|r| r.uri().path()).collect();
        let list_path = format!("{UPGRADE}/operations");
        assert_eq!(paths, vec![LOGIN, list_path.as_str()]);

        drop(client);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_refresh_falls_due_before_the_token_expires() {
    bounded(async {
        // Tokens live 4 s; the session refreshes half-way through a lifetime that short, so the renewal happens
        // before the platform would refuse anything. The client's clock is virtual and drives the simulator's
        // clock, so 2.4 s pass for both without waiting.
        let sim = Arc::new(
            start(
                SimConfig::default().with_token_lifetime(Duration::from_secs(4)),
                EmbeddedOptions::default().with_recording(),
            )
            .await,
        );
        let clock = SimTimeSleeper::new(sim.clone());
        let session =
            SessionConfig::new().with_refresh_margin(Duration::from_secs(3600)).with_min_token_lifetime(Duration::ZERO);
        let client = Client::new(config(&sim).with_session(session).with_clock(Arc::new(clock.clone()))).unwrap();
        client.query_upgrade_task_list(&QueryUpgradeTaskList::new()).await.unwrap();
        assert_eq!(client.session_state().await, SessionState::Valid);
        clock.sleep_until(clock.now() + Duration::from_millis(2400)).await;
        assert_eq!(client.session_state().await, SessionState::RefreshDue);
        client.query_upgrade_task_list(&QueryUpgradeTaskList::new()).await.unwrap();
        assert_eq!(client.session_state().await, SessionState::Valid);

        let recorded = sim.take_recorded();
        let list_path = format!("{UPGRADE}/operations");
        let paths: Vec<&str> = recorded.iter().map(|r| r.uri().path()).collect();
        assert_eq!(paths, vec![LOGIN, list_path.as_str(), REFRESH, list_path.as_str()]);
        assert_ne!(bearer(&recorded[1]), bearer(&recorded[3]));

        drop(client);
        drop(clock);
        Arc::into_inner(sim).expect("the only holder").shutdown().await;
    })
    .await;
}

/// A firmware task over 256 devices of one kind, in a fleet big enough to have them.
async fn big_task(sim: &EmbeddedSim, client: &Client) -> (iot_model::OperationId, Vec<DeviceId>) {
    let (devices, package) = biggest_kind(sim, FileType::FirmwarePackage);
    let targets: Vec<DeviceId> = devices.into_iter().take(256).collect();
    assert_eq!(targets.len(), 256);
    let op = client
        .create_firmware_upgrade_task(&CreateFirmwareUpgradeTask::new(CreateUpgradeTask::new(
            package.file_id.clone(),
            OperateDevices::new().with_devices(targets.clone()),
        )))
        .await
        .unwrap()
        .operation_id;
    (op, targets)
}

#[tokio::test]
async fn paged_walks_see_every_subtask_exactly_once() {
    bounded(async {
        let sim = start(SimConfig::default().with_fleet_size(600), EmbeddedOptions::default().with_recording()).await;
        let client = client(&sim);
        let (op, targets) = big_task(&sim, &client).await;
        let expected: BTreeSet<&DeviceId> = targets.iter().collect();
        sim.take_recorded();

        // items(): 256 subtasks in 13 pages of at most 20.
        let items: Vec<SubOperationInfo> =
            client.items(QuerySubOperations::new(op.clone()).with_page_size(20)).try_collect().await.unwrap();
        assert_eq!(items.len(), 256);
        let ids: BTreeSet<_> = items.iter().map(|s| s.sub_operation_id.clone()).collect();
        assert_eq!(ids.len(), 256, "a subtask came twice");
        assert_eq!(device_ids(&items), targets);
        let recorded = sim.take_recorded();
        let pages: Vec<String> = recorded.iter().map(|r| query_param(r, "pageNo").unwrap()).collect();
        assert_eq!(pages, (0..13).map(|n| n.to_string()).collect::<Vec<_>>());

        // pages(): the same walk page by page, each reporting the total.
        let pages: Vec<_> =
            client.pages(QuerySubOperations::new(op.clone()).with_page_size(20)).try_collect().await.unwrap();
        assert_eq!(pages.len(), 13);
        let mut seen = BTreeSet::new();
        for (n, page) in pages.iter().enumerate() {
            assert_eq!(page.page_no, Some(n as u32));
            assert_eq!(page.total_count, Some(256));
            assert_eq!(page.data.len(), if n < 12 { 20 } else { 16 });
            for sub in &page.data {
                assert!(seen.insert(sub.device_id.clone().unwrap()), "device {:?} seen twice", sub.device_id);
            }
        }
        assert_eq!(seen.iter().collect::<BTreeSet<_>>(), expected);

        // A walk starting part-way begins there.
        let tail: Vec<SubOperationInfo> = client
            .items(QuerySubOperations::new(op.clone()).with_page_size(20).with_page_no(10))
            .try_collect()
            .await
            .unwrap();
        assert_eq!(device_ids(&tail), targets[200..].to_vec());

        drop(client);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn paged_walk_over_batch_details_sees_every_device_once() {
    bounded(async {
        let sim = start(SimConfig::default().with_fleet_size(600), EmbeddedOptions::default().with_recording()).await;
        let client = client(&sim);
        let (devices, package) = biggest_kind(&sim, FileType::FirmwarePackage);
        let device_type = package.device_type.clone().unwrap();
        let of_type: BTreeSet<String> = sim.with_sim(|s| {
            s.devices().iter().filter(|d| d.device_type == device_type).map(|d| d.device_id.to_string()).collect()
        });
        assert!(of_type.len() >= devices.len() && of_type.len() > 250, "{}", of_type.len());
        let task = reboot_task(
            "reboot every device of a type",
            DeviceCmdParam::new(DeviceCmdType::DeviceType, reboot()).with_device_type(device_type),
        );
        let task_id = client.create_batch_task(&task).await.unwrap().task_id;
        sim.take_recorded();

        let details: Vec<_> =
            client.items(QueryTaskDetails::new(task_id.clone()).with_page_size(25)).try_collect().await.unwrap();
        let seen: Vec<String> =
            details.iter().map(|d| d.param.as_ref().unwrap()["deviceId"].as_str().unwrap().to_owned()).collect();
        let unique: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(seen.len(), of_type.len());
        assert_eq!(unique, of_type);
        let requests = sim.take_recorded().len();
        assert_eq!(requests, of_type.len().div_ceil(25));
        assert!(requests >= 10, "{requests} pages");

        drop(client);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_token_expiring_mid_walk_is_refreshed_once_and_nothing_is_lost() {
    bounded(async {
        let sim = start(SimConfig::default().with_fleet_size(600), EmbeddedOptions::default().with_recording()).await;
        let client = client(&sim);
        let (op, targets) = big_task(&sim, &client).await;
        sim.take_recorded();

        let mut walk = std::pin::pin!(client.pages(QuerySubOperations::new(op.clone()).with_page_size(20)));
        let mut seen = Vec::new();
        let mut pages = 0;
        while let Some(page) = walk.try_next().await.unwrap() {
            pages += 1;
            assert_eq!(page.total_count, Some(256));
            seen.extend(device_ids(&page.data));
            if pages == 5 {
                // The platform's clock jumps past the token's lifetime between two pages.
                advance(&sim, PAST_TOKEN_LIFETIME);
            }
        }
        assert_eq!(pages, 13);
        assert_eq!(seen, targets, "every subtask exactly once, in order");

        let recorded = sim.take_recorded();
        assert_eq!(count_path(&recorded, LOGIN), 0);
        assert_eq!(count_path(&recorded, REFRESH), 1);
        let sub_path = format!("{UPGRADE}/operations/{op}/subOperations");
        assert_eq!(count_path(&recorded, &sub_path), 14, "13 pages and the refused one");
        let asked: Vec<String> =
            recorded.iter().filter(|r| r.uri().path() == sub_path).map(|r| query_param(r, "pageNo").unwrap()).collect();
        let mut expected: Vec<String> = (0..13).map(|n| n.to_string()).collect();
        expected.insert(5, "5".to_owned());
        assert_eq!(asked, expected, "only the refused page is asked twice");
        // The refresh sits right after the refused request, and the tokens before and after differ.
        let refresh_at = recorded.iter().position(|r| r.uri().path() == REFRESH).unwrap();
        assert_eq!(refresh_at, 6);
        assert_eq!(bearer(&recorded[0]), bearer(&recorded[5]));
        assert_ne!(bearer(&recorded[5]), bearer(&recorded[7]));
        assert_eq!(bearer(&recorded[7]), bearer(&recorded[14]));

        drop(client);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_token_expiring_in_scaled_time_mid_walk_is_refreshed_once() {
    bounded(async {
        // The platform's clock jumps past the 60 s token lifetime mid-walk, while the client, which believes
        // `expiresIn` on its own clock, sees no reason to refresh early: the platform refuses the token.
        let sim = start(
            SimConfig::default().with_fleet_size(600).with_token_lifetime(Duration::from_secs(60)),
            EmbeddedOptions::default().with_recording(),
        )
        .await;
        let client = client(&sim);
        let (op, targets) = big_task(&sim, &client).await;
        sim.take_recorded();

        let mut walk = std::pin::pin!(client.items(QuerySubOperations::new(op.clone()).with_page_size(20)));
        let mut seen = Vec::new();
        while let Some(sub) = walk.try_next().await.unwrap() {
            seen.push(sub.device_id.unwrap());
            if seen.len() == 100 {
                // 72 simulated seconds pass: the token dies before the sixth page is asked for.
                advance(&sim, Duration::from_secs(72));
            }
        }
        assert_eq!(seen, targets, "every subtask exactly once, in order");

        let recorded = sim.take_recorded();
        assert_eq!((count_path(&recorded, LOGIN), count_path(&recorded, REFRESH)), (0, 1));
        let sub_path = format!("{UPGRADE}/operations/{op}/subOperations");
        assert_eq!(count_path(&recorded, &sub_path), 14, "13 pages and the refused one");
        assert_eq!(recorded[6].uri().path(), REFRESH);
        assert_eq!(query_param(&recorded[5], "pageNo"), query_param(&recorded[7], "pageNo"));

        drop(client);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn concurrent_calls_refused_together_share_one_refresh() {
    bounded(async {
        let sim = start(SimConfig::default(), EmbeddedOptions::default().with_recording()).await;
        let client = client(&sim);
        client.login().await.unwrap();
        let old = bearer(&sim.take_recorded()[0]);
        assert_eq!(old, None, "login carries no token");
        client.query_upgrade_task_list(&QueryUpgradeTaskList::new()).await.unwrap();
        let old = bearer(&sim.take_recorded()[0]).unwrap();
        advance(&sim, PAST_TOKEN_LIFETIME);

        let calls = (0..8).map(|_| {
            let client = client.clone();
            async move { client.query_upgrade_task_list(&QueryUpgradeTaskList::new()).await }
        });
        for result in futures_util::future::join_all(calls).await {
            assert_eq!(result.unwrap().total_count, Some(0));
        }

        let recorded = sim.take_recorded();
        assert_eq!((count_path(&recorded, LOGIN), count_path(&recorded, REFRESH)), (0, 1), "one renewal for all");
        let list_path = format!("{UPGRADE}/operations");
        let calls: Vec<_> = recorded.iter().filter(|r| r.uri().path() == list_path).collect();
        let with_old = calls.iter().filter(|r| bearer(r).as_deref() == Some(old.as_str())).count();
        let new_tokens: BTreeSet<String> =
            calls.iter().filter_map(|r| bearer(r)).filter(|t| *t != old).collect::<BTreeSet<_>>();
        assert_eq!(new_tokens.len(), 1, "every retry uses the one new token");
        assert!((1..=8).contains(&with_old), "{with_old} refused attempts");
        assert_eq!(calls.len() - with_old, 8, "each call succeeds once with the new token");

        drop(client);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_second_login_elsewhere_costs_the_first_client_one_renewal() {
    bounded(async {
        let sim = start(SimConfig::default(), EmbeddedOptions::default().with_recording()).await;
        let first = client(&sim);
        let second = client(&sim);
        let list_path = format!("{UPGRADE}/operations");

        first.query_upgrade_task_list(&QueryUpgradeTaskList::new()).await.unwrap();
        let first_token = bearer(sim.take_recorded().last().unwrap()).unwrap();
        // The same app logs in again elsewhere, which invalidates the first client's tokens.
        second.login().await.unwrap();
        sim.take_recorded();

        let page = first.query_upgrade_task_list(&QueryUpgradeTaskList::new()).await.unwrap();
        assert_eq!(page.total_count, Some(0));
        let recorded = sim.take_recorded();
        let paths: Vec<&str> = recorded.iter().map(|r| r.uri().path()).collect();
        // Refused with the old token; the refresh token was invalidated too, so one login; then success.
        assert_eq!(paths, vec![list_path.as_str(), REFRESH, LOGIN, list_path.as_str()]);
        assert_eq!(bearer(&recorded[0]).as_deref(), Some(first_token.as_str()));
        let renewed = bearer(&recorded[3]).unwrap();
        assert_ne!(renewed, first_token);

        // The next call of the first client needs nothing more.
        first.query_upgrade_task_list(&QueryUpgradeTaskList::new()).await.unwrap();
        let recorded = sim.take_recorded();
        assert_eq!(recorded.len(), 1);
        assert_eq!(bearer(&recorded[0]).as_deref(), Some(renewed.as_str()));

        // The second client lost its token to that login in turn, and recovers the same way.
        second.query_upgrade_task_list(&QueryUpgradeTaskList::new()).await.unwrap();
        let paths: Vec<String> = sim.take_recorded().iter().map(|r| r.uri().path().to_owned()).collect();
        assert_eq!(paths, vec![list_path.clone(), REFRESH.to_owned(), LOGIN.to_owned(), list_path.clone()]);

        drop((first, second));
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn throttling_surfaces_as_a_platform_error_when_retries_are_off() {
    bounded(async {
        let sim = start(
            SimConfig::default().with_rate_limit(Some((5, Duration::from_secs(60)))),
            EmbeddedOptions::default().with_recording(),
        )
        .await;
        let client = Client::new(config(&sim).with_retry(RetryPolicy::disabled())).unwrap();
        // The login counts against the limit too: it and four calls use the whole window.
        client.login().await.unwrap();
        for _ in 0..4 {
            client.query_upgrade_task_list(&QueryUpgradeTaskList::new()).await.unwrap();
        }
        let err = client.query_upgrade_task_list(&QueryUpgradeTaskList::new()).await.unwrap_err();
        let Error::Api(api) = &err else { panic!("expected a platform error, got {err:?}") };
        assert!(api.is_throttled(), "{api:?}");
        assert!(!api.is_token_invalid());
        assert_eq!(code(&err), Some((403, "1010009".to_owned())));
        assert!(err.is_retryable());
        // Exactly one attempt: no retry, and no renewal of a token that is fine.
        assert_eq!(sim.take_recorded().len(), 6);
        assert_eq!(client.session_state().await, SessionState::Valid);

        drop(client);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_throttled_call_succeeds_after_waiting_out_the_window() {
    bounded(async {
        let sim = Arc::new(
            start(
                SimConfig::default().with_rate_limit(Some((5, Duration::from_secs(60)))),
                EmbeddedOptions::default().with_recording(),
            )
            .await,
        );
        // Waits pass in simulated time, so the 61 s the policy asks for take no real time at all.
        let sleeper = SimTimeSleeper::new(sim.clone());
        let policy = RetryPolicy::new().with_throttling(Duration::from_secs(61), Duration::from_secs(120));
        let client = Client::new(config(&sim).with_retry(policy).with_clock(Arc::new(sleeper.clone()))).unwrap();
        client.login().await.unwrap();
        for _ in 0..4 {
            client.query_upgrade_task_list(&QueryUpgradeTaskList::new()).await.unwrap();
        }
        assert!(sleeper.delays().is_empty());
        let before = sim.with_sim(|s| s.now());
        let page = client.query_upgrade_task_list(&QueryUpgradeTaskList::new()).await.unwrap();
        assert_eq!(page.total_count, Some(0));
        let delays = sleeper.delays();
        assert_eq!(delays.len(), 1, "{delays:?}");
        assert!(delays[0] >= Duration::from_secs(61) && delays[0] <= Duration::from_secs(122), "{delays:?}");
        // The simulator's own clock (which the sleeper moved) went forward by the wait.
        let waited = sim.with_sim(|s| s.now()).duration_since(before).unwrap();
        assert!(waited >= Duration::from_secs(61), "{waited:?}");
        // Login, four calls, the throttled attempt and its successful retry.
        let recorded = sim.take_recorded();
        assert_eq!(recorded.len(), 7);
        assert_eq!(count_path(&recorded, LOGIN), 1);
        assert_eq!(client.retry_quota_available(), client.config().retry_quota);

        drop(client);
        drop(sleeper);
        let sim = Arc::try_unwrap(sim).unwrap();
        sim.shutdown().await;
    })
    .await;
}

fn tls_client(sim: &EmbeddedSim, tls: TlsOptions) -> Client {
    Client::new(config_with(sim, TransportConfig::with_tls(tls))).unwrap()
}

fn tls_source(err: &Error) -> &rustls::Error {
    match err {
        Error::Tls(TransportError::Tls { source, .. }) => source,
        other => panic!("expected a tls error, got {other:?}"),
    }
}

#[tokio::test]
async fn https_trusts_only_the_generated_ca() {
    bounded(async {
        let sim =
            start(SimConfig::default(), EmbeddedOptions::default().with_transport(Transport::Https).with_recording())
                .await;
        assert!(sim.base_url().starts_with("https://localhost:"), "{}", sim.base_url());
        let ca = sim.pki().unwrap().ca_cert_pem().as_bytes().to_vec();

        let trusted = tls_client(&sim, TlsOptions::new(Roots::custom_ca_pem(&ca).unwrap()));
        trusted.login().await.unwrap();
        let page = trusted.query_package_list(&QueryPackageList::new()).await.unwrap();
        assert_eq!(page.total_count, Some(sim.with_sim(|s| s.packages().len()) as u64));
        assert_eq!(sim.take_recorded().len(), 2);

        let public = tls_client(&sim, TlsOptions::new(Roots::Platform));
        let err = public.login().await.unwrap_err();
        assert!(matches!(tls_source(&err), rustls::Error::InvalidCertificate(_)), "{err:?}");
        assert!(!err.is_retryable());

        let other = TestPki::generate().unwrap();
        let foreign = tls_client(&sim, TlsOptions::new(Roots::custom_ca_pem(other.ca_cert_pem().as_bytes()).unwrap()));
        let err = foreign.query_package_list(&QueryPackageList::new()).await.unwrap_err();
        assert!(matches!(tls_source(&err), rustls::Error::InvalidCertificate(_)), "{err:?}");
        assert!(err.api().is_none());

        // Neither refused client got a request through.
        assert!(sim.take_recorded().is_empty());
        drop((trusted, public, foreign));
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn mutual_tls_needs_a_client_certificate_from_the_platform_ca() {
    bounded(async {
        let sim = start(
            SimConfig::default(),
            EmbeddedOptions::default().with_transport(Transport::MutualTls).with_recording(),
        )
        .await;
        let pki = sim.pki().unwrap();
        let roots = || Roots::custom_ca_pem(pki.ca_cert_pem().as_bytes()).unwrap();

        let identity =
            Identity::from_pem(pki.client().cert_chain_pem().as_bytes(), pki.client().key_pem().as_bytes()).unwrap();
        let with_cert = tls_client(&sim, TlsOptions::new(roots()).with_identity(identity));
        let page = with_cert.query_upgrade_task_list(&QueryUpgradeTaskList::new()).await.unwrap();
        assert_eq!(page.total_count, Some(0));
        assert_eq!(sim.take_recorded().len(), 2, "login and the call");

        // Without a certificate the server ends the handshake with an alert the client reports as TLS.
        let without = tls_client(&sim, TlsOptions::new(roots()));
        let err = without.login().await.unwrap_err();
        assert!(
            matches!(tls_source(&err), rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired)),
            "{err:?}"
        );
        assert!(err.api().is_none() && !err.is_retryable());

        // A certificate from another CA is refused the same way.
        let foreign = Identity::from_pem(
            pki.foreign_client().cert_chain_pem().as_bytes(),
            pki.foreign_client().key_pem().as_bytes(),
        )
        .unwrap();
        let with_foreign = tls_client(&sim, TlsOptions::new(roots()).with_identity(foreign));
        let err = with_foreign.query_upgrade_task_list(&QueryUpgradeTaskList::new()).await.unwrap_err();
        assert!(
            matches!(tls_source(&err), rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA)),
            "{err:?}"
        );
        assert!(err.api().is_none());

        assert!(sim.take_recorded().is_empty(), "no refused client reached the platform");
        drop((with_cert, without, with_foreign));
        sim.shutdown().await;
    })
    .await;
}
