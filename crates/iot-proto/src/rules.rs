//! Cross-field rules of the contract that a field's own limits cannot express; called by generated glue.

use iot_model::limits::CUSTOM_WINDOW_MIN_SECS;
use iot_model::{
    BatchTaskRequest, BatchTaskType, DeviceCmdParam, DeviceCmdType, ExecuteType, OperateDevices, OperatePolicy,
    Timestamp,
};

use crate::generated::ErrorCode;
use crate::validate::Validator;

/// Exactly one of `devices` and `deviceGroups`; groups need deviceType, model and manufacturerName.
pub(crate) fn operate_devices(t: &OperateDevices, v: &mut Validator) {
    // An empty list targets nothing, so it counts as absent.
    let devices = t.devices.as_ref().is_some_and(|d| !d.is_empty());
    let groups = t.device_groups.as_ref().is_some_and(|g| !g.is_empty());
    match (devices, groups) {
        (false, false) => v.fail("devices", "either devices or deviceGroups is required", Some(ErrorCode::NoTargets)),
        (true, true) => {
            v.fail("devices", "devices and deviceGroups are mutually exclusive", Some(ErrorCode::BothTargets))
        }
        (false, true) => {
            let empty = |s: &Option<String>| s.as_deref().is_none_or(str::is_empty);
            if empty(&t.device_type) {
                v.fail("deviceType", "is required when deviceGroups is given", Some(ErrorCode::DeviceTypeMissing));
            }
            if empty(&t.model) {
                v.fail("model", "is required when deviceGroups is given", Some(ErrorCode::ModelMissing));
            }
            if empty(&t.manufacturer_name) {
                v.fail(
                    "manufacturerName",
                    "is required when deviceGroups is given",
                    Some(ErrorCode::ManufacturerNameMissing),
                );
            }
        }
        (true, false) => {}
    }
}

/// executeType known; a custom window needs both times, start before end by at least
/// `CUSTOM_WINDOW_MIN_SECS`; retryType needs retryTimes.
pub(crate) fn operate_policy(p: &OperatePolicy, v: &mut Validator) {
    match &p.execute_type {
        None => v.fail(
            "executeType",
            "is required in a policy (now, device_online or custom)",
            Some(ErrorCode::BadExecuteType),
        ),
        Some(e) => v.known("executeType", e, Some(ErrorCode::BadExecuteType)),
    }
    if p.execute_type == Some(ExecuteType::Custom) {
        match (p.start_time, p.end_time) {
            (Some(start), Some(end)) => {
                if start > end {
                    v.fail("startTime", "must not be later than endTime", Some(ErrorCode::StartAfterEnd));
                } else if end.unix_seconds() - start.unix_seconds() < CUSTOM_WINDOW_MIN_SECS as i64 {
                    let rule = format!("must be at least {CUSTOM_WINDOW_MIN_SECS} seconds after startTime");
                    v.fail("endTime", rule, Some(ErrorCode::WindowTooShort));
                }
            }
            (None, _) => v.fail("startTime", "is required when executeType is custom", Some(ErrorCode::BadWindow)),
            (_, None) => v.fail("endTime", "is required when executeType is custom", Some(ErrorCode::BadWindow)),
        }
    }
    if p.retry_type == Some(true) && p.retry_times.is_none() {
        v.fail("retryTimes", "is required when retryType is true", Some(ErrorCode::BadRetryTimes));
    }
}

/// The rule that needs the platform's clock: a custom window must not start in the past. The client cannot
/// know the platform's clock, so this check is separate; the simulator runs it with its own `now`.
pub fn policy_starts_in_future(p: &OperatePolicy, now: Timestamp) -> Result<(), crate::ValidationError> {
    let mut v = Validator::new();
    if p.execute_type == Some(ExecuteType::Custom)
        && let Some(start) = p.start_time
        && start < now
    {
        v.fail("policy.startTime", "must not be in the past", Some(ErrorCode::StartInPast));
    }
    v.finish()
}

/// A batch task's type must be known, and a DeviceCmd task's `param` must be a valid DeviceCmdParam.
pub(crate) fn batch_task_request(t: &BatchTaskRequest, v: &mut Validator) {
    v.known("taskType", &t.task_type, Some(ErrorCode::InvalidInput));
    if t.task_type != BatchTaskType::DeviceCmd {
        return;
    }
    let param: DeviceCmdParam = match serde_json::from_value(serde_json::Value::Object(t.param.clone())) {
        Ok(p) => p,
        Err(e) => {
            v.fail("param", format!("is not a DeviceCmd param: {e}"), Some(ErrorCode::InvalidInput));
            return;
        }
    };
    device_cmd_param(&param, v);
}

/// The selection a DeviceCmd param names must come with what it selects by, and its fields keep their limits.
///
/// `param` travels as a free JSON object, so no request body reaches DeviceCmdParam as a typed field; the spec
/// marks it `validated`, and its generated checks run here first. Its list caps (`MAX_BATCH_DEVICES`,
/// `MAX_BATCH_GROUPS`) keep one request from asking a server to store an unbounded task.
pub(crate) fn device_cmd_param(p: &DeviceCmdParam, v: &mut Validator) {
    v.nested("param", p);
    let code = || Some(ErrorCode::InvalidInput);
    let filled = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    match p.kind {
        DeviceCmdType::DeviceList if p.device_list.as_ref().is_none_or(Vec::is_empty) => {
            v.fail("param.deviceList", "is required when type is DeviceList", code())
        }
        DeviceCmdType::DeviceType if !filled(&p.device_type) => {
            v.fail("param.deviceType", "is required when type is DeviceType", code())
        }
        DeviceCmdType::DeviceArea if !filled(&p.device_location) => {
            v.fail("param.deviceLocation", "is required when type is DeviceArea", code())
        }
        DeviceCmdType::GroupList | DeviceCmdType::GroupIdList if p.group_list.as_ref().is_none_or(Vec::is_empty) => {
            v.fail("param.groupList", "is required when type is GroupList or GroupIdList", code())
        }
        DeviceCmdType::Unknown(_) => v.known("param.type", &p.kind, code()),
        _ => {}
    }
}
