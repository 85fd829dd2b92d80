#!/usr/bin/env node
/*
 * A third-party VDA 5050 peer for tests/interop, built from vda-5050-lib (npm, pinned in package.json).
 *
 *   node peer.js '<json config>'
 *
 * mode "agv":    the lib's AgvController with a VirtualAgvAdapter, as a 2.0.0 robot, against our controller.
 * mode "master": the lib's MasterController, as a 2.0.0 master, against `lastmile sitl robot`.
 *
 * It speaks newline-delimited JSON: events on stdout ({"event": ...}), commands on stdin ({"cmd": ...}).
 * Nothing here re-implements the protocol: every message is built, validated and interpreted by the lib
 * (its 2.0 validators run on what it sends and, for the master, on what it receives). What the lib drops as
 * invalid is reported as a "dropped" event, so a test can require that nothing was dropped.
 */
"use strict";

const readline = require("readline");
const util = require("util");
const lib = require("vda-5050-lib");

const config = JSON.parse(process.argv[2]);

function emit(event, data) {
    process.stdout.write(JSON.stringify({ event, ...data }) + "\n");
}

// The lib reports inbound messages it drops (invalid, wrong version) through console.error.
console.error = (...args) => emit("dropped", { message: util.format(...args) });
process.on("unhandledRejection", err => emit("failure", { message: String(err && err.stack || err) }));
process.on("uncaughtException", err => emit("failure", { message: String(err && err.stack || err) }));

function clientOptions() {
    return {
        interfaceName: "uagv",
        transport: {
            brokerUrl: config.brokerUrl,
            username: config.username,
            password: config.password,
            heartbeat: config.keepalive || 2, // MQTT keepalive (s): the last will fires within 1.5x
            reconnectPeriod: 500,
        },
        vdaVersion: "2.0.0",
    };
}

/*
 * A parcel robot: the lib's virtual AGV, except that it leaves the station loaded (the lib's AGV must pick a
 * load before it may drop one; a delivery robot is loaded by hand). Its `drop` keeps the lib's own
 * parameter rules (stationType "floor...", loadType "EPAL"): those are the robot-defined parameters the
 * controller must send.
 */
class ParcelAdapter extends lib.VirtualAgvAdapter {
    /*
     * Where the lib cannot follow the standard: VirtualAgvAdapter.attach() sets the factsheet to `{}`, so
     * a factsheetRequest is answered with a factsheet the official 2.0.0 schema refuses (typeSpecification,
     * physicalParameters, ... are required); the controller rightly drops it. This robot has a real one.
     */
    attach(context) {
        super.attach(context);
        this._controller.updateFactsheet(factsheet());
    }

    get actionDefinitions() {
        return super.actionDefinitions.map(d =>
            d.actionType === "drop" ? { ...d, actionExecutable: undefined } : d);
    }
}

/*
 * A robot that refuses cancelOrder while it runs an order (as one mid-handover would). The lib has no hook
 * for refusing a cancel, so this overrides its check and refuses through the lib's own error path:
 * the error it publishes (type instantActionError, errorReferences topic/actionId/actionType) is the lib's.
 */
class StubbornAgvController extends lib.AgvController {
    _checkInstantActionExecutable(action) {
        if (action.actionType === "cancelOrder" && this.hasActiveOrder) {
            const context = { action, scope: "instant" };
            const error = this._createActionError(context, lib.ErrorType.InstantAction,
                "instant action is not executable",
                [{ referenceKey: lib.AgvController.REF_KEY_ERROR_DESCRIPTION_DETAIL,
                   referenceValue: "handover in progress" }]);
            this._instantActionsErroredPublishCount.set(error, 0);
            this._updateState({ errors: [...this._currentState.errors, error] }, true);
            emit("cancel_refused", { actionId: action.actionId });
            return false;
        }
        return super._checkInstantActionExecutable(action);
    }
}

function factsheet() {
    // A 2.0.0 factsheet naming the robot's actions and the drop's parameters (what a controller checks).
    return {
        typeSpecification: {
            seriesName: "lib-virtual-parcel", agvKinematic: "DIFF", agvClass: "CARRIER",
            maxLoadMass: 10, localizationTypes: ["NATURAL"], navigationTypes: ["AUTONOMOUS"],
        },
        physicalParameters: {
            speedMin: 0, speedMax: 2, accelerationMax: 1, decelerationMax: 1,
            heightMax: 0.6, width: 0.6, length: 0.7,
        },
        protocolLimits: { maxStringLens: {}, maxArrayLens: {}, timing: { minOrderInterval: 0.1, minStateInterval: 0.1 } },
        protocolFeatures: {
            optionalParameters: [],
            agvActions: [
                {
                    actionType: "drop", actionScopes: ["NODE"],
                    actionParameters: [
                        { key: "stationType", valueDataType: "STRING", isOptional: false },
                        { key: "loadType", valueDataType: "STRING", isOptional: false },
                        { key: "duration", valueDataType: "NUMBER", isOptional: true },
                        { key: "loadId", valueDataType: "STRING", isOptional: true },
                    ],
                },
                { actionType: "cancelOrder", actionScopes: ["INSTANT"] },
                { actionType: "stateRequest", actionScopes: ["INSTANT"] },
                { actionType: "factsheetRequest", actionScopes: ["INSTANT"] },
            ],
        },
        agvGeometry: {},
        loadSpecification: {},
    };
}

async function runAgv() {
    const agvId = { manufacturer: config.manufacturer, serialNumber: config.serialNumber };
    const Controller = config.refuseCancel ? StubbornAgvController : lib.AgvController;
    const agv = new Controller(agvId, clientOptions(), {
        agvAdapterType: ParcelAdapter,
        publishStateInterval: 1000,
        publishVisualizationInterval: 1000,
    }, {
        initialPosition: { mapId: config.mapId, x: 0, y: 0, theta: 0, lastNodeId: "0" },
        timeLapse: config.timeLapse || 5,
        vehicleSpeed: config.vehicleSpeed || 2,
    });
    await agv.start();
    emit("ready", { serialNumber: config.serialNumber });
    return {
        async stop() { await agv.stop(); },
    };
}

function actionHandlers(tag) {
    return {
        onActionStateChanged: (state, error) => emit("action", {
            tag, actionId: state.actionId, actionType: state.actionType, status: state.actionStatus,
            error: error || null,
        }),
        onActionError: (error, action) => emit("action_error", {
            tag, actionId: action.actionId, actionType: action.actionType, error,
        }),
    };
}

async function runMaster() {
    const master = new lib.MasterController(clientOptions(), {});
    await master.start();
    master.trackAgvs((agvId, connectionState) => emit("connection", {
        serialNumber: agvId.serialNumber, connectionState,
    }));
    await master.subscribe(lib.Topic.Factsheet, {}, (factsheet, agvId) => emit("factsheet", {
        serialNumber: agvId.serialNumber, agvActions: factsheet.protocolFeatures.agvActions,
    }));
    await master.subscribe(lib.Topic.State, {}, (state, agvId) => emit("state", {
        serialNumber: agvId.serialNumber, orderId: state.orderId, lastNodeId: state.lastNodeId,
        driving: state.driving, errors: state.errors,
    }));
    emit("ready", {});
    return {
        async handle(cmd) {
            const agvId = { manufacturer: config.manufacturer, serialNumber: cmd.serialNumber };
            if (cmd.cmd === "order") {
                const sent = await master.assignOrder(agvId, cmd.order, {
                    onOrderProcessed: (error, byCancelation, active) => emit("order_processed", {
                        orderId: cmd.order.orderId, error: error || null, byCancelation, active,
                    }),
                    onNodeTraversed: node => emit("node_traversed", { nodeId: node.nodeId }),
                    ...actionHandlers("order"),
                });
                emit("order_sent", { headerId: sent && sent.headerId, version: sent && sent.version });
            } else if (cmd.cmd === "instant") {
                const sent = await master.initiateInstantActions(agvId, { instantActions: cmd.actions },
                    actionHandlers("instant"));
                emit("instant_sent", { headerId: sent && sent.headerId });
            }
        },
        async stop() { await master.stop(); },
    };
}

async function main() {
    const peer = config.mode === "agv" ? await runAgv() : await runMaster();
    const lines = readline.createInterface({ input: process.stdin });
    lines.on("line", async line => {
        const cmd = JSON.parse(line);
        try {
            if (cmd.cmd === "stop") {
                await peer.stop();
                emit("stopped", {});
                process.exit(0);
            }
            await peer.handle(cmd);
        } catch (err) {
            emit("failure", { message: String(err && err.message || err), cmd: cmd.cmd });
        }
    });
}

main().catch(err => {
    emit("failure", { message: String(err && err.stack || err) });
    process.exit(1);
});
