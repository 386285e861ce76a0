import { useCallback, useState } from 'preact/hooks';
import { errorText, getAnalyses } from '../api';
import type { AnalysisListItem } from '../schemas';

/** The recent analyses (GET /api/v1/analyses) and why they could not be loaded. */
export function useHistory(limit = 20): { history: AnalysisListItem[]; error: string | undefined; reload: () => Promise<void> } {
  const [history, setHistory] = useState<AnalysisListItem[]>([]);
  const [error, setError] = useState<string>();
  const reload = useCallback(async () => {
    try {
      setHistory((await getAnalyses(limit)).analyses);
      setError(undefined);
    } catch (err) {
      setError(errorText(err).message);
    }
  }, [limit]);
  return { history, error, reload };
}
