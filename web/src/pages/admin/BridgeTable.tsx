import { Link } from "react-router";
import type { Schemas } from "../../api/client";
import { relativeTime } from "../format";

type Bridge = Schemas["Bridge"];

/**
 * The bridges' health: online (a heartbeat in the last minute), the last
 * heartbeat, the records waiting in each one's disk queue, the
 * instruments it serves; with a revoke button per bridge when `onRevoke`
 * is given (administrators).
 */
export function BridgeTable({ bridges, instruments, onRevoke, compact = false }: {
  bridges: Bridge[];
  instruments: Pick<Schemas["Instrument"], "id" | "name">[];
  onRevoke?: (bridge: Bridge) => void;
  compact?: boolean;
}) {
  const instrumentName = (id: string) => instruments.find((i) => i.id === id)?.name;
  return (
    <div className="scroll">
      <table className="table">
        <caption className="visually-hidden">Edge bridges and their health</caption>
        <thead>
          <tr>
            <th scope="col">Bridge</th><th scope="col">Health</th><th scope="col">Last heartbeat</th><th scope="col">Queue</th>
            <th scope="col">Instruments</th>{!compact && <th scope="col">Version</th>}
            {onRevoke && <th scope="col"><span className="visually-hidden">Actions</span></th>}
          </tr>
        </thead>
        <tbody>
          {bridges.map((bridge) => (
            <tr key={bridge.id} data-bridge={bridge.name}>
              <td>{bridge.name}<div className="muted small">{bridge.hostname ?? "host not reported yet"}</div></td>
              <td><span className={`badge ${bridge.online ? "status-online" : "status-offline"}`}>{bridge.online ? "Online" : "Offline"}</span></td>
              <td>
                {bridge.lastHeartbeatAt ? (
                  <time dateTime={bridge.lastHeartbeatAt} title={new Date(bridge.lastHeartbeatAt).toLocaleString()}>
                    {relativeTime(bridge.lastHeartbeatAt)}
                  </time>
                ) : (
                  <span className="muted">never</span>
                )}
              </td>
              <td>{queueText(bridge.queueDepth)}</td>
              <td>
                {bridge.connectedInstruments.length === 0 ? (
                  <span className="muted">none reported</span>
                ) : (
                  <ul className="plain compact">
                    {bridge.connectedInstruments.map((id) => (
                      <li key={id}>
                        {instrumentName(id) ? <Link to={`/instruments/${id}`}>{instrumentName(id)}</Link> : <span className="muted">a removed instrument</span>}
                      </li>
                    ))}
                  </ul>
                )}
              </td>
              {!compact && <td>{bridge.version ?? <span className="muted">—</span>}</td>}
              {onRevoke && (
                <td className="row-actions">
                  <button type="button" className="secondary small-button danger-text" aria-label={`Revoke ${bridge.name}: take it out of service`}
                    onClick={() => onRevoke(bridge)}>Revoke…</button>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function queueText(depth: number | null | undefined) {
  if (depth == null) return <span className="muted">not reported</span>;
  if (depth === 0) return "empty";
  return <span className="badge tone-warn">{depth.toLocaleString()} waiting</span>;
}
