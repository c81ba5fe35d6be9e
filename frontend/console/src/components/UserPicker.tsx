/** A user picker on the WAI-ARIA combobox pattern (a text box with a listbox popup, list
 *  autocomplete): type to search the API, ArrowDown/ArrowUp to move through the users, Enter to
 *  choose, Escape to close the list (again: to clear the choice). Focus stays in the text box; the
 *  option under the arrow keys is its aria-activedescendant. More users load on scrolling to the
 *  end of the list, or with its last option, "More users". */
import { type KeyboardEvent, useEffect, useId, useRef, useState } from 'react';

import { describeError } from '../api/errors.ts';
import { readFragment } from '../graphql.ts';
import { FieldErrors } from './FieldErrors.tsx';
import { useAnnounce } from './LiveRegion.tsx';
import { UserLabelFragment, userText } from './UserLabel.tsx';
import { type PickedUser, useUserSearch } from './useUserSearch.ts';
import './UserPicker.css';

export type { PickedUser } from './useUserSearch.ts';

const NEAR_END_PX = 48; // scrolled this close to the list's end: the next page loads

export interface UserPickerProps {
  label: string; // the accessible name, e.g. "Target User"
  hint: string; // what the choice means, read after the name
  value: PickedUser | null;
  onChange: (user: PickedUser | null) => void;
  includeInactive: boolean;
  errors: readonly string[]; // shown beside the field, and read with it
}

/** What an option says: name, username and User ID, and "inactive" when so. */
function optionName(user: PickedUser): string {
  const { displayName, userId, active } = readFragment(UserLabelFragment, user);
  return [displayName, user.username, `User ID ${userId}`, active ? null : 'inactive'].filter(Boolean).join(', ');
}

export function UserPicker({ label, hint, value, onChange, includeInactive, errors }: UserPickerProps) {
  const id = useId();
  const [text, setText] = useState(value ? userText(value) : '');
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(-1); // the option under the arrow keys; -1: none
  const list = useRef<HTMLUListElement>(null);
  const announce = useAnnounce();

  // The box shows the chosen user; opening it then lists everyone rather than searching for that label.
  const showsChoice = value !== null && text === userText(value);
  const search = useUserSearch(showsChoice ? '' : text, includeInactive, open);
  const count = search.users.length + (search.hasMore ? 1 : 0);
  const expanded = open && count > 0;
  const moreIndex = search.hasMore ? search.users.length : -1;
  const optionId = (index: number) => `${id}-option-${index}`;

  useEffect(() => {
    if (value === null) return;
    setText(userText(value)); // a choice made elsewhere (or cleared) shows in the box
  }, [value]);

  useEffect(() => {
    if (active >= 0) document.getElementById(`${id}-option-${active}`)?.scrollIntoView({ block: 'nearest' });
  }, [id, active]);

  useEffect(() => {
    if (!open || search.loading || search.total === null) return;
    announce(search.total === 1 ? '1 user found' : `${search.total.toLocaleString()} users found`);
  }, [open, search.loading, search.total, search.searched, announce]);

  const choose = (user: PickedUser) => {
    onChange(user);
    setText(userText(user));
    setOpen(false);
    setActive(-1);
    announce(`${label}: ${userText(user)}`);
  };

  const activate = (index: number) => {
    if (index === moreIndex) search.loadMore();
    else if (search.users[index]) choose(search.users[index]);
  };

  const onKeyDown = (event: KeyboardEvent<HTMLInputElement>) => {
    switch (event.key) {
      case 'ArrowDown':
        event.preventDefault();
        if (!open) setOpen(true);
        if (!event.altKey) setActive((current) => Math.min(current + 1, Math.max(count - 1, 0)));
        break;
      case 'ArrowUp':
        event.preventDefault();
        if (!open) setOpen(true);
        setActive((current) => (current <= 0 ? Math.max(count - 1, 0) : current - 1));
        break;
      case 'Enter':
        if (expanded && active >= 0) {
          event.preventDefault();
          activate(active);
        }
        break;
      case 'Escape':
        if (open) {
          event.preventDefault();
          setOpen(false);
          setActive(-1);
          if (value) setText(userText(value));
        } else if (text) {
          event.preventDefault();
          setText('');
          onChange(null);
        }
        break;
    }
  };

  const status = !open
    ? null
    : search.error
      ? describeError(search.error)
      : search.loading && search.total === null
        ? 'Searching…'
        : search.total === 0
          ? `No user matches “${search.searched}”.`
          : search.total !== null
            ? `${search.users.length.toLocaleString()} of ${search.total.toLocaleString()} users shown${search.loading ? ', searching…' : ''}`
            : `${search.users.length.toLocaleString()} users shown, more below${search.loading ? ', searching…' : ''}`;

  const errorsId = `${id}-errors`;
  return (
    <div className="field picker">
      <label htmlFor={`${id}-input`} id={`${id}-label`}>
        {label}
      </label>
      <span id={`${id}-hint`} className="hint">
        {hint}
      </span>
      <div className="picker-box">
        <input
          id={`${id}-input`}
          type="text"
          role="combobox"
          autoComplete="off"
          spellCheck={false}
          aria-autocomplete="list"
          aria-expanded={expanded}
          aria-controls={`${id}-listbox`}
          aria-activedescendant={expanded && active >= 0 && active < count ? optionId(active) : undefined}
          aria-describedby={errors.length > 0 ? `${id}-hint ${errorsId}` : `${id}-hint`}
          aria-invalid={errors.length > 0 || undefined}
          placeholder="Type a name, username or User ID"
          value={text}
          onChange={(event) => {
            setText(event.target.value);
            setOpen(true);
            setActive(-1);
            if (value) onChange(null);
          }}
          onKeyDown={onKeyDown}
          onClick={() => setOpen((was) => !was)}
          onBlur={() => {
            setOpen(false);
            setActive(-1);
          }}
        />
        <ul
          ref={list}
          id={`${id}-listbox`}
          role="listbox"
          aria-labelledby={`${id}-label`}
          aria-busy={search.loading || undefined}
          className="picker-list"
          hidden={!expanded}
          // A press in the list keeps the focus in the text box (the list is its popup).
          onMouseDown={(event) => event.preventDefault()}
          onScroll={() => {
            const element = list.current;
            if (element && element.scrollTop + element.clientHeight >= element.scrollHeight - NEAR_END_PX) search.loadMore();
          }}
        >
          {search.users.map((user, index) => {
            const { displayName, userId, active: isActive } = readFragment(UserLabelFragment, user);
            return (
              <li
                key={user.id}
                id={optionId(index)}
                role="option"
                aria-selected={index === active || undefined}
                aria-label={optionName(user)}
                className="picker-option"
                onClick={() => choose(user)}
              >
                <span className="picker-option-name">{displayName}</span>
                <span className="picker-option-meta">
                  {user.username} · User ID {userId}
                  {isActive ? null : <span className="badge">inactive</span>}
                </span>
              </li>
            );
          })}
          {search.hasMore ? (
            <li
              id={optionId(moreIndex)}
              role="option"
              aria-selected={active === moreIndex || undefined}
              className="picker-option picker-more"
              onClick={() => search.loadMore()}
            >
              More users
            </li>
          ) : null}
        </ul>
        {status ? <p className="picker-status hint">{status}</p> : null}
      </div>
      <FieldErrors id={errorsId} messages={errors} />
    </div>
  );
}
