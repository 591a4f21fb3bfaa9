import { useEffect, useState } from 'preact/hooks'

/** The part of the location after `#/`, split into segments (`#/tables/Dog` → ['tables', 'Dog']). */
function currentRoute(): string[] {
  return location.hash
    .replace(/^#\/?/, '')
    .split('/')
    .filter((s) => s !== '')
    .map((s) => decodeURIComponent(s))
}

export function href(...segments: string[]): string {
  return `#/${segments.map((s) => encodeURIComponent(s)).join('/')}`
}

/** Hash routing: the Studio is one page, so reloading or sharing a link keeps the view. */
export function useRoute(): string[] {
  const [route, setRoute] = useState(currentRoute)
  useEffect(() => {
    const update = () => setRoute(currentRoute())
    addEventListener('hashchange', update)
    return () => removeEventListener('hashchange', update)
  }, [])
  return route
}
