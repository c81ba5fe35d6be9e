/** Headings whose level follows where a screen is shown, so the page's outline stays whole: a
 *  screen's title is an h2 under the page's h1 and its parts' headings are h3; shown inside a
 *  part of another screen (Bulk shows its running transfer under its own h2), the same screen's
 *  title is an h3 and its parts' h4. */
import { type ComponentPropsWithRef, createContext, type ReactNode, useContext } from 'react';

type Level = 2 | 3 | 4 | 5;
const TAGS = { 2: 'h2', 3: 'h3', 4: 'h4', 5: 'h5', 6: 'h6' } as const;

const LevelContext = createContext<Level>(2);

/** The level of the screen titles within `children`. */
export function HeadingLevel({ level, children }: { level: Level; children: ReactNode }) {
  return <LevelContext.Provider value={level}>{children}</LevelContext.Provider>;
}

/** A screen's title: the focus goes there when the screen replaces the one that held it (App.tsx). */
export function ScreenHeading(props: ComponentPropsWithRef<'h2'>) {
  const Tag = TAGS[useContext(LevelContext)];
  return <Tag tabIndex={-1} data-screen-title="" {...props} />;
}

/** The heading of a part of the screen: one level below its title. */
export function PartHeading(props: ComponentPropsWithRef<'h3'>) {
  const Tag = TAGS[(useContext(LevelContext) + 1) as keyof typeof TAGS];
  return <Tag {...props} />;
}
