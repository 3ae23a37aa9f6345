//! JSON round trips of every model structure: what is written reads back equal, and absent fields are
//! omitted rather than written as `null`, except the answer fields the spec marks `nullable`.

use std::fmt::Debug;

use iot_model::strategies;
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::support::{free_form_fields, nullable_fields, nulls_outside_free_form, spec_names};

/// Serializes `value`, checks that no `null` appears outside free-form and nullable members, and reads it back
/// both from the text and from a `serde_json::Value`.
fn check_round_trip<T>(value: &T) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let text = serde_json::to_string(value).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let tree: serde_json::Value = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let exempt: Vec<String> = free_form_fields().into_iter().chain(nullable_fields()).collect();
    let nulls = nulls_outside_free_form(&tree, &exempt);
    prop_assert!(nulls.is_empty(), "null written at {nulls:?} in {text}");
    let back: T = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(format!("{e} in {text}")))?;
    prop_assert_eq!(&back, value, "text: {}", text);
    let from_tree: T = serde_json::from_value(tree).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&from_tree, value);
    Ok(())
}

/// One property test per structure; `COVERED` lists the structures so that the spec can be checked against it.
macro_rules! round_trips {
    ($($strategy:ident => $ty:ident),* $(,)?) => {
        /// The structures with a round-trip property below.
        const COVERED: &[&str] = &[$(stringify!($ty)),*];

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(96))]
            $(
                #[test]
                fn $strategy(value in strategies::$strategy()) {
                    check_round_trip::<iot_model::$ty>(&value)?;
                }
            )*
        }
    };
}

round_trips! {
    auth_token => AuthToken,
    login_form => LoginForm,
    refresh_token_request => RefreshTokenRequest,
    logout_request => LogoutRequest,
    category_info => CategoryInfo,
    category_page => CategoryPage,
    operate_devices => OperateDevices,
    operate_policy => OperatePolicy,
    create_upgrade_task => CreateUpgradeTask,
    create_upgrade_task_response => CreateUpgradeTaskResponse,
    operation_sta_result => OperationStaResult,
    operation_info => OperationInfo,
    operation_page => OperationPage,
    sub_operation_info => SubOperationInfo,
    sub_operation_page => SubOperationPage,
    tag => Tag,
    command => Command,
    device_cmd_param => DeviceCmdParam,
    batch_task_request => BatchTaskRequest,
    create_batch_task_response => CreateBatchTaskResponse,
    batch_task_info => BatchTaskInfo,
    task_detail => TaskDetail,
    task_detail_page => TaskDetailPage,
    error_body => ErrorBody,
}

#[test]
fn every_spec_structure_has_a_round_trip_property() {
    let spec = spec_names("structs");
    let missing: Vec<&String> = spec.iter().filter(|s| !COVERED.contains(&s.as_str())).collect();
    assert!(missing.is_empty(), "structures without a round-trip property: {missing:?}");
    let stale: Vec<&&str> = COVERED.iter().filter(|c| !spec.iter().any(|s| s == *c)).collect();
    assert!(stale.is_empty(), "round-trip properties for structures not in the spec: {stale:?}");
}

#[test]
fn absent_fields_are_omitted_not_null() {
    // A value with every optional field absent serializes to its required members, plus `null` for the
    // answer fields the platform writes as null.
    let info = iot_model::OperationInfo::new(iot_model::OperationId::new("op-1").unwrap());
    assert_eq!(serde_json::to_string(&info).unwrap(), r#"{"operationId":"op-1","stopTime":null,"policy":null}"#);
    let sub = iot_model::SubOperationInfo::new(iot_model::SubOperationId::new("sub-1").unwrap());
    assert_eq!(serde_json::to_string(&sub).unwrap(), r#"{"subOperationId":"sub-1","startTime":null,"stopTime":null}"#);
    let detail = iot_model::TaskDetail::new();
    assert_eq!(serde_json::to_string(&detail).unwrap(), r#"{"output":null,"error":null}"#);
    let page = iot_model::SubOperationPage::new();
    assert_eq!(serde_json::to_string(&page).unwrap(), r#"{"data":[]}"#);
}

#[test]
fn request_bodies_never_write_null() {
    // Requests stay canonical: the strict detector (no nullable exemption) finds nothing in any body type.
    let free = free_form_fields();
    let id = iot_model::FileId::new("f-1").unwrap();
    let bodies = [
        serde_json::to_value(iot_model::OperatePolicy::new()).unwrap(),
        serde_json::to_value(iot_model::OperateDevices::new()).unwrap(),
        serde_json::to_value(iot_model::CreateUpgradeTask::new(id.clone(), iot_model::OperateDevices::new())).unwrap(),
        serde_json::to_value(
            iot_model::CreateUpgradeTask::new(id, iot_model::OperateDevices::new())
                .with_policy(iot_model::OperatePolicy::new()),
        )
        .unwrap(),
    ];
    for body in &bodies {
        assert!(nulls_outside_free_form(body, &free).is_empty(), "{body}");
    }
    assert_eq!(bodies[0].to_string(), "{}");
    assert_eq!(bodies[2].to_string(), r#"{"fileId":"f-1","targets":{}}"#);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn request_structures_never_write_null(
        create in strategies::create_upgrade_task(),
        batch in strategies::batch_task_request(),
        cmd in strategies::device_cmd_param(),
    ) {
        let free = free_form_fields();
        for tree in [
            serde_json::to_value(&create).unwrap(),
            serde_json::to_value(&batch).unwrap(),
            serde_json::to_value(&cmd).unwrap(),
        ] {
            let nulls = nulls_outside_free_form(&tree, &free);
            prop_assert!(nulls.is_empty(), "null written at {:?} in {}", nulls, tree);
        }
    }
}

#[test]
fn the_null_detector_sees_nulls() {
    // The property above relies on this detector; make sure it does report a written null.
    let v = serde_json::json!({"a": null, "b": [1, null], "extendInfo": {"x": null}});
    assert_eq!(nulls_outside_free_form(&v, &free_form_fields()), ["a", "b[1]"]);
}
