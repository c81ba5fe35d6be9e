/** "Upload User Data Transfer File": a button that opens the file explorer (as in the seed) and
 *  sends the chosen file as a GraphQL multipart request (urql's fetchExchange sends one by itself
 *  when a variable holds a File). File-level refusals appear beside the button. */
import { type ChangeEvent, useId, useRef } from 'react';
import { useMutation } from 'urql';

import { describeError, describeUserError } from '../../api/errors.ts';
import { FieldErrors } from '../../components/FieldErrors.tsx';
import { useAnnounce } from '../../components/LiveRegion.tsx';
import { graphql } from '../../graphql.ts';

const UploadFile = graphql(`
  mutation UploadBulkTransferFile($file: Upload!) {
    uploadBulkTransferFile(file: $file) {
      upload {
        id
        filename
        pairCount
        errorCount
      }
      userErrors {
        code
        message
        field
      }
    }
  }
`);

export interface UploadFormProps {
  onChosen: () => void; // a file was chosen: the last preview is no longer the file's
  onUploaded: (uploadId: string) => void;
}

export function UploadForm({ onChosen, onUploaded }: UploadFormProps) {
  const input = useRef<HTMLInputElement>(null);
  const errorsId = useId();
  const announce = useAnnounce();
  const [result, upload] = useMutation(UploadFile);

  async function send(event: ChangeEvent<HTMLInputElement>) {
    const file = event.currentTarget.files?.[0];
    event.currentTarget.value = ''; // the same file, fixed and chosen again, is sent again
    if (!file) return;
    onChosen();
    announce(`Checking ${file.name}…`);
    const answer = await upload({ file });
    const payload = answer.data?.uploadBulkTransferFile;
    if (payload?.upload) {
      const { filename, pairCount, errorCount } = payload.upload;
      announce(
        errorCount
          ? `${filename} checked: ${errorCount} ${errorCount === 1 ? 'error' : 'errors'} to fix. See the preview.`
          : `${filename} checked: ${pairCount} ${pairCount === 1 ? 'pair' : 'pairs'} to transfer. See the preview.`,
      );
      onUploaded(payload.upload.id);
    } else {
      announce(`${file.name} was not accepted.`, { assertive: true });
    }
  }

  const messages = result.error
    ? [describeError(result.error)]
    : (result.data?.uploadBulkTransferFile.userErrors ?? []).map(describeUserError);
  return (
    <div className="upload-form">
      <button
        type="button"
        onClick={() => input.current?.click()}
        disabled={result.fetching}
        aria-busy={result.fetching || undefined}
        aria-describedby={messages.length ? errorsId : undefined}
      >
        Upload User Data Transfer File
      </button>
      <input
        ref={input}
        type="file"
        accept=".csv,text/csv"
        hidden
        aria-label="User Data Transfer File"
        onChange={(event) => void send(event)}
      />
      {result.fetching ? <p className="hint">Checking the file…</p> : null}
      <FieldErrors id={errorsId} messages={messages} />
    </div>
  );
}
