/** Announcements for screen readers (progress, results): one polite live region for the whole
 *  console, present from the start so that assistive technology is listening before anything is said.
 *  Screens call `useAnnounce()(text)`; urgent news (a failure) goes with `{ assertive: true }`. */
import { createContext, type ReactNode, useCallback, useContext, useState } from 'react';

type Announce = (text: string, options?: { assertive?: boolean }) => void;

const AnnounceContext = createContext<Announce>(() => {});

export function useAnnounce(): Announce {
  return useContext(AnnounceContext);
}

export function LiveRegionProvider({ children }: { children: ReactNode }) {
  const [polite, setPolite] = useState('');
  const [assertive, setAssertive] = useState('');
  const announce = useCallback<Announce>((text, options) => {
    const set = options?.assertive ? setAssertive : setPolite;
    // The same words twice are announced twice: cleared first, then said on the next frame.
    set('');
    window.requestAnimationFrame(() => set(text));
  }, []);
  return (
    <AnnounceContext.Provider value={announce}>
      {children}
      <div className="visually-hidden" aria-live="polite" aria-atomic="true" data-testid="live-polite">
        {polite}
      </div>
      <div className="visually-hidden" aria-live="assertive" aria-atomic="true" data-testid="live-assertive">
        {assertive}
      </div>
    </AnnounceContext.Provider>
  );
}
