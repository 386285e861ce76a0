import { useCallback, useState } from 'preact/hooks';
import { errorText, getAnalyses } from '../api';
import type { AnalysisListItem } from '../schemas';

/**
 * The recent analyses (GET /api/v1/analyses), whether the gateway has answered yet (an empty list
 * before its first answer is not "none"), and why they could not be loaded.
 */
export function useHistory(limit = 20): { history: AnalysisListItem[]; loaded: boolean; error: string | undefined; reload: () => Promise<void> } {
  const [history, setHistory] = useState<AnalysisListItem[]>([]);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<string>();
  const reload = useCallback(async () => {
    try {
      setHistory((await getAnalyses(limit)).analyses);
      setLoaded(true);
      setError(undefined);
    } catch (err) {
      setError(errorText(err).message);
    }
  }, [limit]);
  return { history, loaded, error, reload };
}
