/** "Delete my data": erasure of this visitor's profile, events and consent records. */
import { DeleteMyData } from '@/components/delete-my-data';

export default function DeleteMyDataPage() {
  return (
    <>
      <h1>Delete my data</h1>
      <p>
        This erases your profile at the edge and your events and consent records in our systems. A minimal
        record that an erasure happened (not what was erased) is kept as proof.
      </p>
      <DeleteMyData />
    </>
  );
}
