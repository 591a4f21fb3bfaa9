import { useCallback, useEffect, useState } from 'preact/hooks'

/** Loads something once (and again on `reload()`), keeping the last value, error and a loading flag. */
export function useData<T>(load: () => Promise<T>, deps: unknown[]) {
  const [data, setData] = useState<T | undefined>(undefined)
  const [error, setError] = useState<Error | null>(null)
  const [loading, setLoading] = useState(true)
  const reload = useCallback(() => {
    setLoading(true)
    return load().then(
      (value) => {
        setData(value)
        setError(null)
        setLoading(false)
      },
      (err: Error) => {
        setError(err)
        setLoading(false)
      },
    )
  }, deps)
  useEffect(() => {
    void reload()
  }, [reload])
  return { data, error, loading, reload }
}
