import type { AnchorHTMLAttributes } from 'react';

import { followLink } from '../router.ts';

/** A link to a route of the console: a real <a href>, followed without reloading the page. */
export function Link({ to, ...rest }: { to: string } & AnchorHTMLAttributes<HTMLAnchorElement>) {
  return <a href={to} onClick={followLink} {...rest} />;
}
