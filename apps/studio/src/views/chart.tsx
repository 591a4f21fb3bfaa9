import { useEffect, useRef } from 'preact/hooks'
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'

export interface Series {
  label: string
  color: string
  values: (number | null)[]
}

/** A small time-series line chart (uPlot), redrawn in place when its data change. */
export function Chart({
  title,
  unit,
  times,
  series,
}: {
  title: string
  unit: string
  times: number[]
  series: Series[]
}) {
  const box = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | null>(null)
  const data = [times, ...series.map((s) => s.values)] as uPlot.AlignedData

  useEffect(() => {
    const el = box.current!
    const make = () => {
      plot.current?.destroy()
      plot.current = new uPlot(
        {
          width: Math.max(240, el.clientWidth),
          height: 180,
          legend: { show: true },
          cursor: { drag: { x: false, y: false } },
          scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.15)] } },
          axes: [
            { stroke: 'currentColor', grid: { stroke: 'rgba(128,128,128,0.15)' } },
            {
              stroke: 'currentColor',
              grid: { stroke: 'rgba(128,128,128,0.15)' },
              size: 56,
              values: (_u, ticks) => ticks.map((t) => `${formatNumber(t)}${unit}`),
            },
          ],
          series: [
            {},
            ...series.map((s) => ({
              label: s.label,
              stroke: s.color,
              width: 2,
              fill: `${s.color}1a`,
              spanGaps: true,
              value: (_u: uPlot, v: number | null) => (v === null ? '–' : `${formatNumber(v)}${unit}`),
            })),
          ],
        },
        data,
        el,
      )
    }
    make()
    const observer = new ResizeObserver(() =>
      plot.current?.setSize({ width: Math.max(240, el.clientWidth), height: 180 }),
    )
    observer.observe(el)
    return () => {
      observer.disconnect()
      plot.current?.destroy()
      plot.current = null
    }
  }, [])

  useEffect(() => {
    plot.current?.setData(data)
  })

  return (
    <figure class="card chart">
      <figcaption>{title}</figcaption>
      <div ref={box} role="img" aria-label={`${title}: ${describe(series)}`} />
    </figure>
  )
}

function describe(series: Series[]): string {
  return series
    .map((s) => {
      const last = [...s.values].reverse().find((v) => v !== null)
      return `${s.label} ${last === undefined || last === null ? 'no data' : formatNumber(last)}`
    })
    .join(', ')
}

export function formatNumber(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`
  if (n >= 1e4) return `${(n / 1e3).toFixed(0)}k`
  if (n >= 100) return n.toFixed(0)
  if (n >= 10) return n.toFixed(1)
  return n.toFixed(2).replace(/\.?0+$/, '') || '0'
}
