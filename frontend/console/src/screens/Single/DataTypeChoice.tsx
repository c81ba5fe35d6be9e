/** The optional choice of data types: every one (the default, as in the seed), or only those
 *  ticked, grouped by product. An empty choice is the API's to refuse, beside this field. */
import { useId } from 'react';
import { useQuery } from 'urql';

import { FieldErrors, RequestError } from '../../components/FieldErrors.tsx';
import { graphql } from '../../graphql.ts';

const SingleDataTypes = graphql(`
  query SingleDataTypes {
    dataTypes {
      key
      name
      product
      policy
    }
  }
`);

const PRODUCTS = [
  { product: 'QM', name: 'Quality Management' },
  { product: 'CLASSIC_WFM', name: 'Classic WFM' },
] as const;

export const POLICY_NAMES = { COMBINE: 'Combine', OVERWRITE: 'Overwrite' } as const;

export interface DataTypeChoiceProps {
  chosen: string[] | null; // null: every data type
  onChange: (chosen: string[] | null) => void;
  errors: readonly string[];
}

export function DataTypeChoice({ chosen, onChange, errors }: DataTypeChoiceProps) {
  const id = useId();
  const [result] = useQuery({ query: SingleDataTypes });
  const all = result.data?.dataTypes ?? [];
  const toggle = (key: string, on: boolean) => {
    const next = new Set(chosen ?? []);
    if (on) next.add(key);
    else next.delete(key);
    onChange(all.map((dt) => dt.key).filter((k) => next.has(k))); // catalogue order
  };
  return (
    <fieldset className="data-types" aria-describedby={errors.length > 0 ? `${id}-errors` : undefined}>
      <legend>Data types</legend>
      <div className="choice">
        <input type="radio" id={`${id}-all`} name={`${id}-scope`} checked={chosen === null} onChange={() => onChange(null)} />
        <label htmlFor={`${id}-all`}>All data types</label>
      </div>
      <div className="choice">
        <input
          type="radio"
          id={`${id}-some`}
          name={`${id}-scope`}
          checked={chosen !== null}
          onChange={() => onChange(all.map((dt) => dt.key))}
        />
        <label htmlFor={`${id}-some`}>Only the data types I choose</label>
      </div>
      <RequestError error={result.error} />
      {chosen !== null ? (
        <div className="data-type-groups">
          {PRODUCTS.map(({ product, name }) => (
            <fieldset key={product} className="data-type-group">
              <legend>{name}</legend>
              {all
                .filter((dt) => dt.product === product)
                .map((dt) => (
                  <div className="choice" key={dt.key}>
                    <input
                      type="checkbox"
                      id={`${id}-${dt.key}`}
                      checked={chosen.includes(dt.key)}
                      onChange={(event) => toggle(dt.key, event.target.checked)}
                    />
                    <label htmlFor={`${id}-${dt.key}`}>
                      {dt.name} <span className="hint">({POLICY_NAMES[dt.policy]})</span>
                    </label>
                  </div>
                ))}
            </fieldset>
          ))}
        </div>
      ) : null}
      <FieldErrors id={`${id}-errors`} messages={errors} />
    </fieldset>
  );
}
