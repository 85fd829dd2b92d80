"""Incoming message dispatch: what ArduPilot's GCS_MAVLINK::handle_message does with each message.

Messages addressed to another system are ignored (target_system not 0 and not ours), as ArduPilot's
routing does. Parameters follow libraries/GCS_MAVLink/GCS_Param.cpp: PARAM_SET answers with the new
PARAM_VALUE to every link (param_index -1, i.e. 65535); PARAM_REQUEST_READ answers on its own link with
the index it was asked by (-1 when asked by name: param_io_timer copies req.param_index into the reply);
an unknown name, to PARAM_SET or PARAM_REQUEST_READ, gets no answer at all and no STATUSTEXT
(AP_Param::find returns nullptr and both handlers return).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter import commands
from sitl.copter.items import Item

if TYPE_CHECKING:
    from sitl.copter.link import Link
    from sitl.copter.vehicle import SimCopter

M = mavlink
SIGNING_EPOCH = 1420070400  # 1 Jan 2015, the MAVLink signing epoch (GCS_Signing.cpp)


def param_value(v: SimCopter, name: str, index: int) -> mavlink.MAVLink_message:
    return M.MAVLink_param_value_message(
        name.encode(), v.params[name], v.params.kind(name), len(v.params), index
    )


def _targets_us(v: SimCopter, msg: mavlink.MAVLink_message) -> bool:
    target = getattr(msg, "target_system", 0)
    return target in (0, v.sysid)


def handle_message(v: SimCopter, link: Link, msg: mavlink.MAVLink_message) -> None:
    """Act on one decoded message that arrived on `link`."""
    kind = msg.get_type()
    src = (msg.get_srcSystem(), msg.get_srcComponent())
    if kind == "HEARTBEAT":
        if src[0] == int(v.params["MAV_GCS_SYSID"]):  # SYSID_MYGCS before 4.7
            v.failsafes.gcs_heartbeat()
        return
    if not _targets_us(v, msg):
        return
    if kind in ("COMMAND_LONG", "COMMAND_INT"):
        result = commands.handle(v, link, msg)
        link.send(M.MAVLink_command_ack_message(msg.command, result, 0, 0, src[0], src[1]))
    elif kind == "SET_MODE":
        # GCS_MAVLINK::handle_set_mode answers with a COMMAND_ACK for message id 11
        ok = bool(msg.base_mode & M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED) and v.set_mode(msg.custom_mode)
        result = M.MAV_RESULT_ACCEPTED if ok else M.MAV_RESULT_FAILED
        link.send(M.MAVLink_command_ack_message(M.MAVLINK_MSG_ID_SET_MODE, result, 0, 0, src[0], src[1]))
    elif kind == "PARAM_REQUEST_LIST":
        for i, name in enumerate(v.params.names()):
            link.send(param_value(v, name, i))
    elif kind == "PARAM_REQUEST_READ":
        names = v.params.names()
        if msg.param_index < 0:
            if msg.param_id in v.params:
                link.send(param_value(v, msg.param_id, 65535))  # -1 as uint16: asked by name
        elif msg.param_index < len(names):
            link.send(param_value(v, names[msg.param_index], msg.param_index))
    elif kind == "PARAM_SET":
        if v.params.set(msg.param_id, msg.param_value):
            v.emit(param_value(v, msg.param_id, 65535))  # -1 as uint16, as ArduPilot sends
    elif kind == "REQUEST_DATA_STREAM":
        link.request_data_stream(msg.req_stream_id, msg.req_message_rate, msg.start_stop)
    elif kind == "SET_POSITION_TARGET_GLOBAL_INT":
        _position_target(v, msg)
    elif kind == "SETUP_SIGNING":
        _setup_signing(v, msg)
    elif kind == "MISSION_SET_CURRENT":
        if v.nav.auto.set_current(msg.seq):
            link.send(v.missions.mission_current_msg())
    elif kind.startswith("MISSION_"):
        _mission(v, link, msg, kind, src)


def _mission(v: SimCopter, link: Link, msg: mavlink.MAVLink_message, kind: str, src: tuple[int, int]) -> None:
    mission_type = getattr(msg, "mission_type", 0)
    transfer = v.missions.transfers.get(mission_type)
    if transfer is None:
        if kind != "MISSION_ACK":
            link.send(M.MAVLink_mission_ack_message(src[0], src[1], M.MAV_MISSION_UNSUPPORTED, mission_type))
        return
    if kind == "MISSION_COUNT":
        transfer.handle_count(link, src, msg.count)
    elif kind in ("MISSION_ITEM_INT", "MISSION_ITEM") and mission_type == 0 and msg.current in (2, 3):
        _guided_item(v, link, src, Item.from_msg(msg), msg.current)
    elif kind in ("MISSION_ITEM_INT", "MISSION_ITEM"):
        transfer.handle_item(link, src, Item.from_msg(msg), msg.seq)
    elif kind == "MISSION_REQUEST_LIST":
        transfer.handle_request_list(link, src)
    elif kind in ("MISSION_REQUEST_INT", "MISSION_REQUEST"):
        transfer.handle_request(link, src, msg.seq, kind == "MISSION_REQUEST_INT")
    elif kind == "MISSION_WRITE_PARTIAL_LIST":
        transfer.handle_write_partial(link, src, msg.start_index, msg.end_index)
    elif kind == "MISSION_CLEAR_ALL":
        transfer.handle_clear_all(link, src)


def _guided_item(v: SimCopter, link: Link, src: tuple[int, int], item: Item, current: int) -> None:
    """MISSION_ITEM with current=2 (a GUIDED destination) or 3 (altitude change only), as
    GCS_MAVLINK::handle_mission_item answers them with a MISSION_ACK (libraries/GCS_MAVLink/GCS_Common.cpp).
    """
    alt = v.missions.rel_alt(item)
    if current == 2:
        ok = v.nav.set_guided_target(item.lat, item.lon, alt)
    else:
        target = v.nav.guided_target or (v.lat, v.lon, v.alt_m)
        ok = v.nav.set_guided_target(target[0], target[1], alt)
    result = M.MAV_MISSION_ACCEPTED if ok else M.MAV_MISSION_ERROR
    link.send(M.MAVLink_mission_ack_message(src[0], src[1], result, M.MAV_MISSION_TYPE_MISSION))


def _position_target(v: SimCopter, msg: mavlink.MAVLink_message) -> None:
    """GUIDED position target.

    ArduCopter/GCS_MAVLink_Copter.cpp handle_message_set_position_target_global_int.
    """
    if msg.type_mask & M.POSITION_TARGET_TYPEMASK_X_IGNORE:
        return  # velocity/acceleration targets are not simulated
    alt = msg.alt
    if msg.coordinate_frame in (M.MAV_FRAME_GLOBAL, M.MAV_FRAME_GLOBAL_INT):
        alt -= v.home[2]
    v.nav.set_guided_target(msg.lat_int / 1e7, msg.lon_int / 1e7, alt)


def _setup_signing(v: SimCopter, msg: mavlink.MAVLink_message) -> None:
    """GCS_MAVLINK::handle_setup_signing: store the key for all links; an all-zero key turns signing off."""
    key = bytes(msg.secret_key)
    signing = v.signing
    if not any(key) and msg.initial_timestamp == 0:
        signing.secret_key = None
        signing.sign_outgoing = False
        return
    signing.secret_key = key
    signing.sign_outgoing = True
    now_10us = int((time.time() - SIGNING_EPOCH) * 100_000)
    signing.timestamp = max(int(msg.initial_timestamp), now_10us)
    signing.link_id = 0
    signing.allow_unsigned_callback = _accept_unsigned
    signing.stream_timestamps.clear()


def update_signing_timestamp(v: SimCopter) -> None:
    """GCS_MAVLINK::update_signing_timestamp: keep the signing clock at least the vehicle's own time
    (ArduPilot's from GPS; here SITL's clock, the start's wall time plus simulated seconds), so a ground
    station that links later does not take the vehicle's stream for a stale one (over a minute behind)."""
    signing = v.signing
    if signing.secret_key is not None:
        now_10us = int((v.start_unix + v.time_s - SIGNING_EPOCH) * 100_000)
        signing.timestamp = max(signing.timestamp, now_10us)


def _accept_unsigned(mav: mavlink.MAVLink, msgid: int) -> bool:
    """GCS_Signing.cpp accept_unsigned_callback: everything on channel 0 (SERIAL0, "assumed to be secure
    channel"), elsewhere only RADIO_STATUS / RADIO; for unsigned and badly signed packets alike."""
    if getattr(mav.file, "trusted", False):
        return True
    return msgid in (M.MAVLINK_MSG_ID_RADIO_STATUS, M.MAVLINK_MSG_ID_RADIO)
