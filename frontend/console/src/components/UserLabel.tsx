/** A user as the console names one everywhere: "Jenny Andrews (21)", and "inactive" when so. */
import { type FragmentOf, graphql, readFragment } from '../graphql.ts';

export const UserLabelFragment = graphql(`
  fragment UserLabel on User {
    userId
    displayName
    active
  }
`);

export function userText(user: FragmentOf<typeof UserLabelFragment>): string {
  const { displayName, userId, active } = readFragment(UserLabelFragment, user);
  return `${displayName} (${userId})${active ? '' : ', inactive'}`;
}

export function UserLabel({ user }: { user: FragmentOf<typeof UserLabelFragment> }) {
  return <span className="user-label">{userText(user)}</span>;
}
