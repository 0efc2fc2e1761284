import { useEffect, useRef, useState } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { format, summary, type Columns, type Limit } from "./chart";

const INK = "#0f5d75";
const LIMIT_COLOUR = { high: "#a4161a", low: "#a4161a", setpoint: "#52606d" } as const;
const HEIGHT = 220;

/**
 * One metric's chart (uPlot on a canvas): the average per bucket with the
 * minimum-to-maximum band, the live readings after it, and the
 * instrument's limits as dashed lines. Drag across it to zoom in; the
 * reset button (or a double click) shows the whole range again. The
 * caption says in words what the chart shows, for those who cannot see it.
 */
export function ReadingsChart({ title, unit, data, limits, rangeLabel }: {
  title: string;
  unit: string | null | undefined;
  data: Columns;
  limits: Limit[];
  rangeLabel: string;
}) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const zoomedRef = useRef(false);
  const [zoomed, setZoomed] = useState(false);
  const limitKey = limits.map((l) => `${l.kind}:${l.label}`).join("|");

  // The plot is made once per set of series; new data only redraws it.
  useEffect(() => {
    const element = host.current;
    if (!element) return;
    const suffix = unit ? ` ${unit}` : "";
    const value = (_: uPlot, v: number | null) => (v === null || v === undefined ? "–" : `${format(v)}${suffix}`);
    const options: uPlot.Options = {
      width: Math.max(element.clientWidth, 240),
      height: HEIGHT,
      scales: { x: { time: true } },
      cursor: { drag: { x: true, y: false, setScale: true } },
      legend: { live: true },
      series: [
        {},
        { label: "Average", stroke: INK, width: 2, value, spanGaps: false },
        { label: "Lowest", stroke: "rgba(15, 93, 117, 0.35)", width: 1, value },
        { label: "Highest", stroke: "rgba(15, 93, 117, 0.35)", width: 1, value },
        ...limits.map((limit) => ({
          label: limit.label,
          stroke: LIMIT_COLOUR[limit.kind],
          width: 1.5,
          dash: limit.kind === "setpoint" ? [2, 4] : [6, 4],
          points: { show: false },
          value,
        })),
      ],
      bands: [{ series: [3, 2], fill: "rgba(15, 93, 117, 0.10)" }],
      axes: [
        { stroke: "#52606d", grid: { stroke: "#e6ebf0" } },
        { stroke: "#52606d", grid: { stroke: "#e6ebf0" }, values: (_, ticks) => ticks.map((t) => format(t)) },
      ],
      hooks: {
        setSelect: [
          (u) => {
            if (u.select.width > 0) {
              zoomedRef.current = true;
              setZoomed(true);
            }
          },
        ],
      },
    };
    const chart = new uPlot(options, data as uPlot.AlignedData, element);
    plot.current = chart;
    const resize = new ResizeObserver(() => chart.setSize({ width: Math.max(element.clientWidth, 240), height: HEIGHT }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      chart.destroy();
      plot.current = null;
    };
    // `data` is applied by the effect below; recreating the plot for it would lose the zoom.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [limitKey, unit]);

  useEffect(() => {
    plot.current?.setData(data as uPlot.AlignedData, !zoomedRef.current);
  }, [data]);

  const reset = () => {
    zoomedRef.current = false;
    setZoomed(false);
    plot.current?.setData(data as uPlot.AlignedData, true);
  };

  const caption = summary(title, data, unit, limits, rangeLabel);
  return (
    <figure className="chart" aria-label={`${title} chart`}>
      <figcaption>
        <span className="chart-title">{title}{unit ? ` (${unit})` : ""}</span>
        {zoomed && (
          <button type="button" className="secondary small-button" onClick={reset}>Show the whole range</button>
        )}
      </figcaption>
      <div ref={host} className="chart-plot" role="img" aria-label={caption} onDoubleClick={reset} />
      <p className="muted small chart-summary">{caption}</p>
    </figure>
  );
}
