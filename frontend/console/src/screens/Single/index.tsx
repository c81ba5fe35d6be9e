/** Single: Transfer data from one user to another. The seed's steps, in its words: the Target User
 *  and the Source User (with "Show inactive users" for both), what the pair would do per data type
 *  and what stops it, then "Run Transfer" and its confirmation. */
import { useEffect, useId, useState } from 'react';

import { describeUserError, type UserErrorLike } from '../../api/errors.ts';
import { FormErrors, RequestError } from '../../components/FieldErrors.tsx';
import { ScreenHeading } from '../../components/Heading.tsx';
import { useAnnounce } from '../../components/LiveRegion.tsx';
import { UserLabelFragment, userText } from '../../components/UserLabel.tsx';
import { type PickedUser, UserPicker } from '../../components/UserPicker.tsx';
import { readFragment } from '../../graphql.ts';
import { DataTypeChoice } from './DataTypeChoice.tsx';
import { impactSentence, PairImpact } from './PairImpact.tsx';
import { errorsAbout, PAIR_CODES, usePlan } from './plan.ts';
import { RunTransfer } from './RunTransfer.tsx';
import './single.css';

const FIELDS = ['targetUserId', 'sourceUserId', 'dataTypes'];

function userIdOf(user: PickedUser | null): number | null {
  return user ? readFragment(UserLabelFragment, user).userId : null;
}

export function SingleScreen() {
  const id = useId();
  const [target, setTarget] = useState<PickedUser | null>(null);
  const [source, setSource] = useState<PickedUser | null>(null);
  const [showInactive, setShowInactive] = useState(false);
  const [dataTypes, setDataTypes] = useState<string[] | null>(null);
  const [refused, setRefused] = useState<readonly UserErrorLike[]>([]); // a start's userErrors
  const announce = useAnnounce();

  const targetUserId = userIdOf(target);
  const sourceUserId = userIdOf(source);
  const { plan, checking, error } = usePlan(sourceUserId, targetUserId, dataTypes);
  useEffect(() => setRefused([]), [sourceUserId, targetUserId, dataTypes]); // a new choice, a new check

  const problems = [...(plan?.errors ?? []), ...refused];
  const beside = (name: string) => errorsAbout(problems, name, name !== 'dataTypes').map(describeUserError);
  const elsewhere = problems
    .filter((e) => !(e.field ? FIELDS.includes(e.field[e.field.length - 1]!) : PAIR_CODES.has(e.code)))
    .map(describeUserError);

  const targetName = target ? userText(target) : '';
  const sourceName = source ? userText(source) : '';
  const summary = plan ? impactSentence(plan.impact, sourceName, targetName) : '';

  useEffect(() => {
    if (!plan) return;
    if (plan.errors.length > 0) {
      const count = plan.errors.length;
      announce(`The transfer cannot run: ${count === 1 ? 'a problem is' : `${count} problems are`} shown beside the fields.`);
    } else {
      announce(`Ready to run. ${summary}`);
    }
  }, [plan, summary, announce]);

  const blockedBecause =
    targetUserId === null || sourceUserId === null
      ? 'Choose a Target User and a Source User first.'
      : checking
        ? 'Checking what the transfer would do…'
        : error || !plan
          ? 'The transfer could not be checked.'
          : plan.errors.length > 0 || refused.length > 0
            ? 'Fix the problems shown above first.'
            : null;

  return (
    <section aria-labelledby="single-heading" className="single">
      <ScreenHeading id="single-heading">Transfer data from one user to another</ScreenHeading>
      <div className="choice inactive-choice">
        <input
          type="checkbox"
          id={`${id}-inactive`}
          checked={showInactive}
          onChange={(event) => setShowInactive(event.target.checked)}
          aria-describedby={`${id}-inactive-hint`}
        />
        <label htmlFor={`${id}-inactive`}>Show inactive users</label>
        <span id={`${id}-inactive-hint`} className="hint">
          Lists inactive users too, in both the Target User and the Source User lists.
        </span>
      </div>
      <div className="pickers">
        <UserPicker
          label="Target User"
          hint="The user whose data is overwritten or combined."
          value={target}
          onChange={setTarget}
          includeInactive={showInactive}
          errors={beside('targetUserId')}
        />
        <UserPicker
          label="Source User"
          hint="The user whose data overwrites the target user's data or combines with it."
          value={source}
          onChange={setSource}
          includeInactive={showInactive}
          errors={beside('sourceUserId')}
        />
      </div>
      <DataTypeChoice chosen={dataTypes} onChange={setDataTypes} errors={beside('dataTypes')} />
      <RequestError error={error} />
      {plan && plan.impact.length > 0 && !plan.errors.some((e) => PAIR_CODES.has(e.code)) ? (
        <PairImpact impact={plan.impact} source={sourceName} target={targetName} />
      ) : null}
      <FormErrors messages={elsewhere} />
      <RunTransfer
        sourceUserId={sourceUserId}
        targetUserId={targetUserId}
        dataTypes={dataTypes}
        blockedBecause={blockedBecause}
        summary={summary}
        onRefused={setRefused}
      />
    </section>
  );
}
