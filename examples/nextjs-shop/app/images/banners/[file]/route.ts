/** GET /images/banners/<name>.svg: the hero banners' artwork (slot content in Directus points here). */
import { bannerSvg } from '@/lib/product-image';

export async function GET(
  _req: Request,
  { params }: { params: Promise<{ file: string }> },
): Promise<Response> {
  const { file } = await params;
  const name = file.replace(/\.svg$/, '');
  if (!/^[a-z0-9-]{1,60}$/.test(name)) return new Response('not found', { status: 404 });
  return new Response(bannerSvg(name), {
    headers: { 'content-type': 'image/svg+xml', 'cache-control': 'public, max-age=86400' },
  });
}
