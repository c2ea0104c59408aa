/** GET /images/products/<slug>.svg: a product image drawn from its slug (see lib/product-image.ts). */
import { productSvg } from '@/lib/product-image';

export async function GET(
  _req: Request,
  { params }: { params: Promise<{ file: string }> },
): Promise<Response> {
  const { file } = await params;
  const slug = file.replace(/\.svg$/, '');
  if (!/^[a-z0-9-]{1,100}$/.test(slug)) return new Response('not found', { status: 404 });
  return new Response(productSvg(slug), {
    headers: { 'content-type': 'image/svg+xml', 'cache-control': 'public, max-age=86400' },
  });
}
